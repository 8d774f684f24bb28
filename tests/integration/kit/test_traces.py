"""Traces of a kit service under gunicorn, exported over OTLP/HTTP to a receiver in the test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import ServedApp, wait_for
from tests.support.recording_sink import RecordingSink
from wire.http_binding import parse_request

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SENDER_SPAN}-01"
# What a developer's shell may set: the tests say where spans go, or that they go nowhere.
NO_OTEL = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    "OTEL_SDK_DISABLED": "",
    "OTEL_TRACES_EXPORTER": "",
    "OTEL_TRACES_SAMPLER": "",
}


@dataclass
class Traced:
    app: ServedApp
    spans: OtlpReceiver
    sink: RecordingSink


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    with OtlpReceiver() as receiver, RecordingSink() as sink:
        app = serve_kit_app(
            tmp_path_factory.mktemp("traced"),
            **{**NO_OTEL, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
            OTEL_BSP_SCHEDULE_DELAY="50",
            K_SINK=sink.url,
        )
        try:
            yield Traced(app, receiver, sink)
        finally:
            app.stop()


def spans_of(traced: Traced, trace_id: str, *, last: str) -> list[ReceivedSpan]:
    """The spans of a trace once the span named `last` is in: it ends after the others, and
    spans are exported in the order they end."""

    def complete() -> list[ReceivedSpan] | None:
        spans = [s for s in traced.spans.spans() if s.trace_id == trace_id]
        return spans if any(s.name == last for s in spans) else None

    return wait_for(complete, timeout=15, what=f"the span {last!r} of trace {trace_id}")


def one(spans: list[ReceivedSpan], **fields: object) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in fields.items())]
    assert len(found) == 1, (fields, [(s.name, s.kind, s.parent_span_id) for s in spans])
    return found[0]


def is_statement(span: ReceivedSpan) -> bool:
    return "db.system" in span.attributes or "db.system.name" in span.attributes


@pytest.mark.parametrize("same_trace", [True, False], ids=["same trace", "another trace"])
def test_a_delivered_event_is_consumed_under_the_brokers_attempt_when_it_continues_the_trace(
    traced: Traced, same_trace: bool
) -> None:
    trace, attempt = secrets.token_hex(16), secrets.token_hex(8)
    headers, body = binary_request("test.effect", {}, traceparent=f"00-{trace}-{SENDER_SPAN}-01")
    header_trace = trace if same_trace else secrets.token_hex(16)
    headers["traceparent"] = f"00-{header_trace}-{attempt}-01"
    with traced.app.explained():
        response = requests.post(traced.app.url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200
    spans = spans_of(traced, trace, last="process test.effect")
    # The delivery's span when it continues the event's trace; the event's own otherwise.
    consumer = one(spans, name="process test.effect")
    assert consumer.parent_span_id == (attempt if same_trace else SENDER_SPAN)


def test_an_event_is_consumed_as_a_child_of_its_traceparent_and_its_reply_names_its_producer(
    traced: Traced,
) -> None:
    headers, body = binary_request("test.effect", {}, subject="o-7", traceparent=TRACEPARENT)
    with traced.app.explained():
        response = requests.post(traced.app.url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200
    _, [reply] = parse_request(
        response.headers.get("Content-Type"), response.headers.items(), response.content
    )

    spans = spans_of(traced, TRACE, last="process test.effect")
    consumer = one(spans, name="process test.effect")
    assert (consumer.kind, consumer.parent_span_id, consumer.service) == (
        "consumer",
        SENDER_SPAN,
        "kittest",
    )
    assert consumer.attributes["cloudevents.event_id"] == headers["ce-id"]
    assert consumer.attributes["cloudevents.event_type"] == "test.effect"
    assert consumer.attributes["cloudevents.event_source"] == "/tests"
    assert consumer.attributes["cloudevents.event_subject"] == "o-7"
    assert consumer.attributes["messaging.system"] == "knative"
    assert consumer.attributes["messaging.operation.type"] == "process"

    handler = one(spans, name="record_effect")
    assert (handler.kind, handler.parent_span_id) == ("internal", consumer.span_id)
    statements = [s for s in spans if is_statement(s)]
    effect = [s for s in statements if "effects" in str(s.attributes.get("db.statement"))]
    assert [s.parent_span_id for s in effect] == [handler.span_id]
    assert {s.parent_span_id for s in statements} <= {consumer.span_id, handler.span_id}

    producer = one(spans, name="create test.reply")
    assert (producer.kind, producer.parent_span_id) == ("producer", consumer.span_id)
    assert producer.attributes["cloudevents.event_id"] == reply.id
    assert reply.get("traceparent") == f"00-{producer.traceparent_part}-01"


def test_an_emitted_event_carries_its_producer_span_and_the_relay_post_is_its_child(
    traced: Traced,
) -> None:
    trace = "5bf92f3577b34da6a3ce929d0e0e4736"
    headers, body = binary_request("test.emit", {}, traceparent=f"00-{trace}-{SENDER_SPAN}-01")
    with traced.app.explained():
        response = requests.post(traced.app.url, data=body, headers=headers, timeout=10)
    assert response.status_code == 202

    def delivered() -> list[dict[str, str]] | None:
        emitted = [
            r.headers for r in traced.sink.accepted() if trace in r.headers["ce-traceparent"]
        ]
        return emitted if len(emitted) == 2 else None

    emitted = wait_for(delivered, timeout=15, what="the two emitted events at the broker")
    spans = spans_of(traced, trace, last="process test.emit")
    consumer = one(spans, name="process test.emit")
    handler = one(spans, name="emit_two", parent_span_id=consumer.span_id)
    for event in emitted:
        producer = one(spans, kind="producer", span_id=event["ce-traceparent"].split("-")[2])
        assert event["ce-traceparent"] == f"00-{producer.traceparent_part}-01"
        assert producer.name == "create test.emitted"
        assert producer.parent_span_id == handler.span_id
        assert producer.attributes["cloudevents.event_id"] == event["ce-id"]
        [insert] = [s for s in spans if is_statement(s) and s.parent_span_id == producer.span_id]
        assert "kit_outbox" in str(insert.attributes.get("db.statement"))
        post = wait_for(
            lambda producer=producer: (
                [  # type: ignore[misc]
                    s
                    for s in traced.spans.spans()
                    if s.name == "send test.emitted" and s.parent_span_id == producer.span_id
                ]
                or None
            ),
            what="the relay's post span",
        )
        assert len(post) == 1
        assert post[0].kind == "client"
        assert post[0].attributes["url.full"] == traced.sink.url
        assert post[0].attributes["http.response.status_code"] == 202
        assert post[0].attributes["cloudevents.event_id"] == event["ce-id"]
        assert post[0].status == "unset"


def test_a_json_route_is_a_server_span_and_its_events_are_its_children(traced: Traced) -> None:
    trace = "6bf92f3577b34da6a3ce929d0e0e4736"
    with traced.app.explained():
        response = requests.post(
            f"{traced.app.url}/orders",
            json={"order_id": "o-9"},
            headers={"traceparent": f"00-{trace}-{SENDER_SPAN}-01"},
            timeout=10,
        )
    assert response.status_code == 201
    spans = spans_of(traced, trace, last="POST /orders")
    server = one(spans, kind="server")
    assert (server.name, server.parent_span_id) == ("POST /orders", SENDER_SPAN)
    producer = one(spans, name="create test.order.placed")
    assert producer.parent_span_id == server.span_id
    assert producer.attributes["cloudevents.event_id"] == response.json()["event_id"]
    assert all(s.parent_span_id is not None for s in spans)


def test_a_failed_event_is_an_error_span_and_a_duplicate_says_so(traced: Traced) -> None:
    crash_trace, again_trace = (
        "8bf92f3577b34da6a3ce929d0e0e4736",
        "9bf92f3577b34da6a3ce929d0e0e4736",
    )
    headers, body = binary_request(
        "test.crash", {}, traceparent=f"00-{crash_trace}-{SENDER_SPAN}-01"
    )
    with traced.app.explained():
        assert (
            requests.post(traced.app.url, data=body, headers=headers, timeout=10).status_code == 500
        )
        headers, body = binary_request(
            "io.cloudevents.test", {}, traceparent=f"00-{again_trace}-{SENDER_SPAN}-01"
        )
        for _ in range(2):
            assert requests.post(traced.app.url, data=body, headers=headers, timeout=10).ok
    crashed = one(spans_of(traced, crash_trace, last="process test.crash"), kind="consumer")
    assert crashed.status == "error"

    def both() -> list[ReceivedSpan] | None:
        spans = [
            s for s in traced.spans.spans() if s.trace_id == again_trace and s.kind == "consumer"
        ]
        return spans if len(spans) == 2 else None

    first, second = wait_for(both, what="the consumer spans of an event and its duplicate")
    assert "shop.event.duplicate" not in first.attributes
    assert second.attributes["shop.event.duplicate"] is True
    assert first.status == second.status == "unset"


def test_probes_and_background_polls_make_no_traces(traced: Traced) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert requests.get(f"{traced.app.url}{path}", timeout=5).status_code == 200
    headers, body = binary_request("com.example.someevent", {})
    requests.post(traced.app.url, data=body, headers=headers, timeout=10)
    wait_for(
        lambda: any(s.name == "process com.example.someevent" for s in traced.spans.spans()),
        what="the span of the event sent after the probes",
    )
    # Roots: the event without a traceparent, and nothing from the probes or the relay's polls.
    roots = [s for s in traced.spans.spans() if s.parent_span_id is None]
    assert [s.name for s in roots] == ["process com.example.someevent"]
    assert roots[0].attributes["cloudevents.event_id"] == headers["ce-id"]


def test_spans_still_queued_are_exported_when_the_worker_exits(tmp_path: Path) -> None:
    trace = "7bf92f3577b34da6a3ce929d0e0e4736"
    with OtlpReceiver() as receiver:
        app = serve_kit_app(
            tmp_path,
            **{**NO_OTEL, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
            # Nothing would be exported for a minute but for the flush at exit.
            OTEL_BSP_SCHEDULE_DELAY="60000",
        )
        try:
            headers, body = binary_request(
                "test.effect", {}, traceparent=f"00-{trace}-{SENDER_SPAN}-01"
            )
            with app.explained():
                assert requests.post(app.url, data=body, headers=headers, timeout=10).ok
            assert receiver.spans() == []
        finally:
            app.stop()
        assert app.process is not None and app.process.returncode == 0
        names = {s.name for s in receiver.spans() if s.trace_id == trace}
        assert {"process test.effect", "record_effect", "create test.reply"} <= names


_PROBE = """
import sys, threading
import requests
from tests.support.kit_app import create_app
from tests.support.events import binary_request
app = create_app()
service = app.extensions["shop.kit"]
headers, body = binary_request("test.effect", {}, traceparent=sys.argv[1])
answer = app.test_client().post("/", data=body, headers=headers)
print(answer.status_code, answer.headers["ce-traceparent"])
print(service.telemetry.enabled, "opentelemetry.sdk" in sys.modules)
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("Otel")))
service.close()
"""


def test_without_an_endpoint_nothing_is_installed_and_the_traceparent_is_carried(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        **NO_OTEL,
        "DATABASE_URL": f"sqlite:///{tmp_path}/off.db",
        "OUTBOX_RELAY": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, TRACEPARENT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer, state, threads = result.stdout.strip().splitlines()
    status, traceparent = answer.split()
    assert status == "200"
    assert traceparent.split("-")[1] == TRACE
    assert traceparent.split("-")[2] != SENDER_SPAN
    assert (state, threads) == ("False False", "[]")
