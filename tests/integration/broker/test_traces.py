"""The broker's own spans (an event received, every delivery attempt, a dead-letter post), read
back through `GET /_shop/traces/<trace_id>` from a real broker process.

The shape under test: producer span -> "<broker> receive" -> one "<trigger> deliver" per attempt
(and "<trigger> dead-letter" per post to the sink), each attempt's span id in the `traceparent`
header the subscriber got, the event's `traceparent` extension left as the producer's.
"""

from __future__ import annotations

import secrets
from typing import Any

import requests

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import always, by_path, fail_times, reply

RETRY_QUICKLY = {"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT0.05S"}


def traceparent() -> tuple[str, str, str]:
    """A producer's span: (traceparent, trace id, span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def trace(broker: BrokerProcess, trace_id: str, spans: int) -> list[dict[str, Any]]:
    """The trace's spans once it holds `spans` of them (spans are written in batches)."""

    def probe() -> list[dict[str, Any]] | None:
        response = requests.get(f"{broker.url}/_shop/traces/{trace_id}", timeout=5)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        document = response.json()
        assert document["trace_id"] == trace_id
        found: list[dict[str, Any]] = document["spans"]
        return found if len(found) >= spans else None

    found: list[dict[str, Any]] = wait_for(probe, timeout=10, what=f"{spans} spans of {trace_id}")
    return found


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted(
        (span for span in spans if span["name"] == name),
        key=lambda span: span["attributes"]["shop.delivery.attempt"],
    )


def test_an_event_s_receive_and_delivery_spans_hang_off_the_producer_s_span(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(
        by_path({"/flaky": fail_times(1, 500), "/broken": always(500), "/dead": always(202)})
    )
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest("flaky", {"uri": f"{sub.url}/flaky"}, delivery=RETRY_QUICKLY),
            trigger_manifest(
                "broken",
                {"uri": f"{sub.url}/broken"},
                delivery={**RETRY_QUICKLY, "deadLetterSink": {"uri": f"{sub.url}/dead"}},
            ),
        ]
    )
    parent, trace_id, producer_span = traceparent()
    event = send(broker, "test.traced", {"n": 1}, traceparent=parent, subject="order-1")
    wait_for_state(broker, event.id, "shop/flaky", "delivered")
    wait_for_state(broker, event.id, "shop/broken", "dead_lettered")
    # 1 receive, 2 attempts to each trigger, 1 post to the dead-letter sink
    spans = trace(broker, trace_id, 6)
    assert len(spans) == 6, spans
    assert [span["start_unix_nano"] for span in spans] == sorted(
        span["start_unix_nano"] for span in spans
    )

    (receive,) = [span for span in spans if span["name"] == "shop/default receive"]
    assert receive["parent_span_id"] == producer_span
    assert (receive["service"], receive["kind"], receive["status"]) == ("broker", "server", "unset")
    assert receive["end_unix_nano"] >= receive["start_unix_nano"]
    attributes = receive["attributes"]
    assert attributes["cloudevents.event_id"] == event.id
    assert attributes["cloudevents.event_type"] == "test.traced"
    assert attributes["cloudevents.event_subject"] == "order-1"
    assert attributes["messaging.destination.name"] == "shop/default"
    assert isinstance(attributes["shop.event.seq"], int)
    seq = attributes["shop.event.seq"]

    flaky = named(spans, "shop/flaky deliver")
    assert [s["attributes"]["http.response.status_code"] for s in flaky] == [500, 200]
    assert [s["status"] for s in flaky] == ["error", "unset"]
    assert flaky[0]["attributes"]["error.type"] == "500"
    assert "error.type" not in flaky[1]["attributes"]
    assert [s["attributes"]["shop.dead_lettered"] for s in flaky] == [False, False]
    assert flaky[1]["attributes"]["url.full"] == f"{sub.url}/flaky"

    broken = named(spans, "shop/broken deliver")
    assert [s["attributes"]["http.response.status_code"] for s in broken] == [500, 500]
    assert [s["attributes"]["shop.outcome"] for s in broken] == ["retry", "failed"]
    assert [s["attributes"]["shop.dead_lettered"] for s in broken] == [False, True]

    (dead,) = named(spans, "shop/broken dead-letter")
    assert dead["attributes"]["http.response.status_code"] == 202
    assert dead["attributes"]["shop.dead_lettered"] is True
    assert dead["attributes"]["url.full"] == f"{sub.url}/dead"

    for span in [*flaky, *broken, dead]:
        assert span["parent_span_id"] == receive["span_id"]
        assert (span["trace_id"], span["service"], span["kind"]) == (trace_id, "broker", "client")
        assert span["attributes"]["shop.event.seq"] == seq
        assert span["attributes"]["shop.trigger"] in ("shop/flaky", "shop/broken")

    # Each request carried its own attempt's span; the extension stayed the producer's.
    for path, attempts in (("/flaky", flaky), ("/broken", broken), ("/dead", [dead])):
        received = sub.received(path)
        assert [r.headers["traceparent"] for r in received] == [
            f"00-{trace_id}-{span['span_id']}-01" for span in attempts
        ]
        assert {r.headers["ce-traceparent"] for r in received} == {parent}


def test_a_reply_s_receive_span_is_the_child_of_the_attempt_it_answered(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    """A reply without trace context of its own came back on the attempt's request."""
    answers = subscriber_factory(reply(lambda n, received: wire_event("test.answer")))
    sink = subscriber_factory(always(202))
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest(
                "asks", {"uri": answers.url}, filter={"attributes": {"type": "test.question"}}
            ),
            trigger_manifest(
                "hears", {"uri": sink.url}, filter={"attributes": {"type": "test.answer"}}
            ),
        ]
    )
    parent, trace_id, _ = traceparent()
    send(broker, "test.question", traceparent=parent)
    sink.wait_for(1)
    spans = trace(broker, trace_id, 4)
    (asked,) = [span for span in spans if span["name"] == "shop/asks deliver"]
    (heard,) = [span for span in spans if span["name"] == "shop/hears deliver"]
    question, answer = [span for span in spans if span["name"] == "shop/default receive"]
    assert asked["parent_span_id"] == question["span_id"]
    assert answer["parent_span_id"] == asked["span_id"]
    assert answer["attributes"]["cloudevents.event_type"] == "test.answer"
    assert heard["parent_span_id"] == answer["span_id"]


def test_an_event_without_trace_context_starts_a_trace(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(202))
    broker = start_broker([broker_manifest(), trigger_manifest("t", {"uri": sub.url})])
    send(broker, "test.untraced")
    (received,) = sub.wait_for(1)
    version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
    assert (version, flags) == ("00", "01")
    spans = trace(broker, trace_id, 2)
    receive, deliver = spans
    assert receive["name"] == "shop/default receive"
    assert receive["parent_span_id"] is None
    assert deliver["span_id"] == span_id
    assert deliver["parent_span_id"] == receive["span_id"]


def test_the_request_s_traceparent_header_is_the_parent_when_the_event_has_none(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(202))
    broker = start_broker([broker_manifest(), trigger_manifest("t", {"uri": sub.url})])
    parent, trace_id, producer_span = traceparent()
    response = requests.post(
        broker.ingress(),
        headers={
            "ce-specversion": "1.0",
            "ce-id": "header-parent",
            "ce-source": "/tests",
            "ce-type": "test.header",
            "traceparent": parent,
        },
        timeout=5,
    )
    assert response.status_code == 202, response.text
    receive = trace(broker, trace_id, 2)[0]
    assert receive["parent_span_id"] == producer_span


def test_with_no_tracing_the_broker_records_no_spans_and_sends_no_header(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(202))
    broker = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": sub.url})], None, "--no-tracing"
    )
    parent, trace_id, _ = traceparent()
    event = send(broker, "test.off", traceparent=parent)
    wait_for_state(broker, event.id, "shop/t", "delivered")
    (received,) = sub.received()
    assert "traceparent" not in received.headers
    assert received.headers["ce-traceparent"] == parent
    response = requests.get(f"{broker.url}/_shop/traces/{trace_id}", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": f"no spans of trace {trace_id}"}


def test_a_trace_id_that_is_not_32_hex_digits_is_refused(
    start_broker: StartBroker,
) -> None:
    broker = start_broker([broker_manifest()])
    for bad in ("xyz", "0" * 31, "A" * 32):
        response = requests.get(f"{broker.url}/_shop/traces/{bad}", timeout=5)
        assert response.status_code == 400, bad
        assert response.json()["field"] == "trace_id"
