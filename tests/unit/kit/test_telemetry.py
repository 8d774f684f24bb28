"""The kit's spans with the real SDK, exported to a receiver: parents and the traceparent sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kit.config import TracingConfig
from kit.telemetry import Telemetry
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from wire.http_binding import WireEvent

STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def exported(telemetry: Telemetry, receiver: OtlpReceiver) -> list[ReceivedSpan]:
    telemetry.shutdown()  # flushes the batch processor
    return receiver.spans()


def started(receiver: OtlpReceiver, sampler: str = "parentbased_always_on") -> Telemetry:
    telemetry = Telemetry(TracingConfig(f"{receiver.endpoint}/v1/traces", "unit", sampler))
    telemetry.start(None)
    return telemetry


def test_an_event_produced_outside_any_span_is_a_child_of_the_stored_traceparent(
    receiver: OtlpReceiver,
) -> None:
    telemetry = started(receiver)
    with telemetry.producing("notification.sent", STORED) as traceparent:
        pass
    [span] = exported(telemetry, receiver)
    assert (span.name, span.kind, span.service) == ("create notification.sent", "producer", "unit")
    assert (span.trace_id, span.parent_span_id) == (STORED[3:35], STORED[36:52])
    assert traceparent == f"00-{span.trace_id}-{span.span_id}-01"


def test_an_event_produced_inside_a_span_is_its_child_whatever_was_stored(
    receiver: OtlpReceiver,
) -> None:
    telemetry = started(receiver)
    event = WireEvent({"specversion": "1.0", "id": "e-1", "source": "/t", "type": "t.in"})
    with telemetry.consuming(event), telemetry.producing("t.out", STORED):
        pass
    spans = exported(telemetry, receiver)
    consumer = next(s for s in spans if s.kind == "consumer")
    producer = next(s for s in spans if s.kind == "producer")
    assert consumer.parent_span_id is None
    assert producer.parent_span_id == consumer.span_id


def test_a_trace_its_sender_did_not_sample_is_carried_but_not_recorded(
    receiver: OtlpReceiver,
) -> None:
    telemetry = started(receiver)
    unsampled = STORED[:-2] + "00"
    with telemetry.producing("t.out", unsampled) as traceparent:
        pass
    assert traceparent is not None
    assert traceparent.startswith(f"00-{STORED[3:35]}-") and traceparent.endswith("-00")
    assert traceparent[36:52] != STORED[36:52]
    assert exported(telemetry, receiver) == []


def test_off_no_span_is_made_and_the_caller_makes_the_traceparent() -> None:
    telemetry = Telemetry(None)
    telemetry.start(None)
    event = WireEvent({"specversion": "1.0", "id": "e-1", "source": "/t", "type": "t.in"})
    with telemetry.consuming(event) as span, telemetry.producing("t.out", STORED) as made:
        assert not span.is_recording()
        assert made is None
    assert not telemetry.enabled
