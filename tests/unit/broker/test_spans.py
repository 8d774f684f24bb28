"""Spans: W3C trace context, OTLP's messages in the store's model, the table and its retention."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus

from shop.broker.otlp import attributes_of, spans_of
from shop.broker.retention import BATCH_SPANS, Pruner
from shop.broker.spans import INDEXED, INSERT, Span, TraceReader
from shop.broker.store import connect
from shop.broker.tracing import BrokerTracer, SpanContext, parse_traceparent
from tests.unit.broker.test_retention import add_event

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
AGE = 60.0
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"00-{TRACE}-{SPAN}-01", SpanContext(TRACE, SPAN, "01")),
        (f"00-{TRACE}-{SPAN}-00", SpanContext(TRACE, SPAN, "00")),
        (f" 00-{TRACE}-{SPAN}-01 ", SpanContext(TRACE, SPAN, "01")),
        # a later version may add fields; its first four are read as version 00's
        (f"01-{TRACE}-{SPAN}-01-later", SpanContext(TRACE, SPAN, "01")),
        (f"00-{TRACE}-{SPAN}-01-later", None),
        (f"ff-{TRACE}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{SPAN}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_a_traceparent_names_a_span_only_when_valid(
    value: object, parsed: SpanContext | None
) -> None:
    assert parse_traceparent(value) == parsed


def test_a_span_context_writes_its_traceparent() -> None:
    assert SpanContext(TRACE, SPAN).traceparent == f"00-{TRACE}-{SPAN}-01"


def test_a_receive_span_is_the_child_of_the_extension_then_the_header_then_nothing() -> None:
    tracer = BrokerTracer(lambda rows: None)
    other = f"00-{'1' * 32}-{'2' * 16}-00"
    by_extension = tracer.begin_receive({"traceparent": f"00-{TRACE}-{SPAN}-01"}, other)
    assert (by_extension.context.trace_id, by_extension.parent_span_id) == (TRACE, SPAN)
    by_header = tracer.begin_receive({"traceparent": "garbage"}, other)
    assert (by_header.context.trace_id, by_header.parent_span_id) == ("1" * 32, "2" * 16)
    assert by_header.context.flags == "00"
    root = tracer.begin_receive({}, None)
    assert root.parent_span_id is None
    assert len(root.context.trace_id) == 32 and root.context.trace_id != TRACE
    assert len({tracer.child_of(None).span_id for _ in range(100)}) == 100


def test_spans_reach_the_sink_in_batches() -> None:
    batches: list[int] = []
    span = Span(TRACE, SPAN, None, "s", "order", "server", 1, 2, "unset", None, {})

    async def run() -> None:
        tracer = BrokerTracer(lambda rows: batches.append(len(rows)), max_batch=3)
        tracer.received_spans([span] * 4)  # one full batch at once, the rest later
        assert batches == [3]
        await asyncio.sleep(0.3)
        assert batches == [3, 1]
        tracer.received_spans([span])
        tracer.flush()
        assert batches == [3, 1, 1]

    asyncio.run(run())


def value(**kind: object) -> AnyValue:
    return AnyValue(**kind)  # type: ignore[arg-type]


def test_otlp_attributes_become_flat_values() -> None:
    pairs = [
        KeyValue(key="s", value=value(string_value="x")),
        KeyValue(key="b", value=value(bool_value=True)),
        KeyValue(key="i", value=value(int_value=-3)),
        KeyValue(key="d", value=value(double_value=0.25)),
        KeyValue(key="raw", value=value(bytes_value=b"\x00\x01")),
        KeyValue(key="unset", value=AnyValue()),
        KeyValue(key="nan", value=value(double_value=float("nan"))),
        KeyValue(key="inf", value=value(double_value=float("-inf"))),
    ]
    array = value()
    array.array_value.values.add(string_value="a")
    array.array_value.values.add(int_value=2)
    pairs.append(KeyValue(key="list", value=array))
    kvlist = value()
    kvlist.kvlist_value.values.add(key="k", value=value(bool_value=False))
    pairs.append(KeyValue(key="map", value=kvlist))
    assert attributes_of(pairs) == {
        "s": "x",
        "b": True,
        "i": -3,
        "d": 0.25,
        "raw": "AAE=",
        "nan": "nan",
        "inf": "-inf",
        "list": '["a", 2]',
        "map": '{"k": false}',
    }


def export_of(*spans: ProtoSpan, service: str | None = "payment") -> ExportTraceServiceRequest:
    export = ExportTraceServiceRequest()
    resource_spans = export.resource_spans.add()
    if service is not None:
        resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "kit"
    scope.spans.extend(spans)
    return export


def proto_span(**fields: object) -> ProtoSpan:
    base: dict[str, object] = {
        "trace_id": bytes.fromhex(TRACE),
        "span_id": bytes.fromhex(SPAN),
        "name": "payment.authorize",
        "kind": ProtoSpan.SPAN_KIND_PRODUCER,
        "start_time_unix_nano": 10,
        "end_time_unix_nano": 25,
    }
    base.update(fields)
    return ProtoSpan(**base)  # type: ignore[arg-type]


def test_an_otlp_span_in_the_store_s_model() -> None:
    parent = bytes.fromhex("1122334455667788")
    status = ProtoStatus(code=ProtoStatus.STATUS_CODE_ERROR, message="declined")
    (span,), rejected = spans_of(export_of(proto_span(parent_span_id=parent, status=status)))
    assert rejected == []
    assert span == Span(
        TRACE,
        SPAN,
        "1122334455667788",
        "payment.authorize",
        "payment",
        "producer",
        10,
        25,
        "error",
        "declined",
        {"otel.scope.name": "kit"},
    )


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (ProtoSpan.SPAN_KIND_UNSPECIFIED, "internal"),
        (ProtoSpan.SPAN_KIND_INTERNAL, "internal"),
        (ProtoSpan.SPAN_KIND_SERVER, "server"),
        (ProtoSpan.SPAN_KIND_CLIENT, "client"),
        (ProtoSpan.SPAN_KIND_CONSUMER, "consumer"),
        (99, "internal"),
    ],
)
def test_span_kinds(kind: int, name: str) -> None:
    (span,), _ = spans_of(export_of(proto_span(kind=kind)))
    assert span.kind == name


def test_a_root_span_without_a_service_name_is_of_unknown_service() -> None:
    (span,), _ = spans_of(export_of(proto_span(), service=None))
    assert (span.parent_span_id, span.service, span.status) == (None, "unknown_service", "unset")


@pytest.mark.parametrize(
    "fields",
    [
        {"trace_id": b"\0" * 16},
        {"trace_id": b"\1" * 8},
        {"span_id": b""},
        {"span_id": b"\0" * 8},
        {"parent_span_id": b"\1" * 4},
        {"end_time_unix_nano": 2**63},
    ],
)
def test_a_span_with_a_bad_id_is_refused_alone(fields: dict[str, object]) -> None:
    spans, rejected = spans_of(export_of(proto_span(), proto_span(**fields)))
    assert len(spans) == 1
    assert len(rejected) == 1 and "payment.authorize" in rejected[0]


@pytest.fixture
def connection(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "broker.db", "normal")


def store(connection: sqlite3.Connection, span: Span, received: float, seq: int | None) -> None:
    values = span.row(received, seq)
    connection.execute(INSERT + "(" + ",".join("?" * len(values)) + ")", values)


def test_a_trace_reads_back_as_stored_sorted_by_start(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    late = Span(TRACE, "2" * 16, SPAN, "b", "broker", "client", 30, 40, "ok", None, {"n": 1})
    early = Span(TRACE, SPAN, None, "a", "order", "server", 10, 50, "error", "boom", {"x": True})
    other = early._replace(trace_id="f" * 32)
    for span in (late, early, other):
        store(connection, span, NOW, None)
    spans = TraceReader(tmp_path / "broker.db").trace(TRACE)
    assert spans == [early, late]
    assert spans[0].to_json() == {
        "trace_id": TRACE,
        "span_id": SPAN,
        "parent_span_id": None,
        "name": "a",
        "service": "order",
        "kind": "server",
        "start_unix_nano": 10,
        "end_unix_nano": 50,
        "status": "error",
        "status_message": "boom",
        "attributes": {"x": True},
    }
    assert TraceReader(tmp_path / "missing.db").trace(TRACE) == []


def test_the_broker_s_attempt_spans_are_found_through_their_event_s_receive_span(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    receive = Span(
        TRACE,
        SPAN,
        None,
        "shop/default receive",
        "broker",
        "server",
        1,
        9,
        "unset",
        None,
        {"shop.event.seq": 7},
    )
    attempt = Span(
        TRACE, "3" * 16, SPAN, "shop/t deliver", "broker", "client", 2, 3, "unset", None, {}
    )
    elsewhere = attempt._replace(trace_id="e" * 32, span_id="4" * 16)  # a resumed one's trace
    root = attempt._replace(trace_id="d" * 32, span_id="5" * 16, parent_span_id=None)
    store(connection, attempt, NOW, 7)
    store(connection, elsewhere, NOW, 7)
    store(connection, receive, NOW, 7)
    store(connection, root, NOW, 8)
    reader = TraceReader(tmp_path / "broker.db")
    assert reader.trace(TRACE) == [receive, attempt]
    assert reader.trace("d" * 32) == [root]  # a root attempt span is found by its own trace
    plan = connection.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM spans WHERE trace_id = ? AND (" + INDEXED + ")",
        (TRACE,),
    ).fetchall()
    assert "spans_by_trace" in str(plan)


def span_count(connection: sqlite3.Connection) -> int:
    count: int = connection.execute("SELECT count(*) FROM spans").fetchone()[0]
    return count


def test_the_broker_s_spans_of_an_event_are_pruned_with_it(connection: sqlite3.Connection) -> None:
    span = Span(
        TRACE, SPAN, None, "shop/default receive", "broker", "server", 1, 2, "unset", None, {}
    )
    add_event(connection, 1, NOW - 2 * AGE)
    add_event(connection, 2, NOW - 2 * AGE, ("pending",))
    # stored late: young spans of old events (only the events' retention takes them)
    store(connection, span, NOW, 1)
    store(connection, span, NOW, 2)
    Pruner(connection, AGE, 2**40, clock=lambda: NOW).step()
    assert connection.execute("SELECT event_seq FROM spans").fetchall() == [(2,)]


def test_a_span_written_after_its_event_was_pruned_goes_by_age(
    connection: sqlite3.Connection,
) -> None:
    span = Span(TRACE, SPAN, None, "shop/t deliver", "broker", "client", 1, 2, "unset", None, {})
    store(connection, span, NOW - 2 * AGE, 99)  # no event 99 any more
    store(connection, span, NOW, 98)
    Pruner(connection, AGE, 2**40, clock=lambda: NOW).step()
    assert connection.execute("SELECT event_seq FROM spans").fetchall() == [(98,)]


def test_over_its_size_the_store_prunes_spans_before_events(
    connection: sqlite3.Connection,
) -> None:
    span = Span(
        TRACE, SPAN, None, "POST /", "order", "server", 1, 2, "unset", None, {"x": "y" * 500}
    )
    add_event(connection, 1, NOW)
    for _ in range(200):
        store(connection, span, NOW, None)
    live = Pruner(connection, AGE, 2**40, clock=lambda: NOW)._live_bytes()
    # a bound the spans' removal alone meets
    Pruner(connection, AGE, live - 50_000, clock=lambda: NOW).step()
    assert span_count(connection) == 0
    assert connection.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_the_services_spans_are_pruned_by_age_oldest_first(connection: sqlite3.Connection) -> None:
    span = Span(TRACE, SPAN, None, "POST /", "order", "server", 1, 2, "unset", None, {})
    for _ in range(BATCH_SPANS + 5):
        store(connection, span, NOW - 2 * AGE, None)
    store(connection, span, NOW - AGE / 2, None)
    pruner = Pruner(connection, AGE, 2**40, clock=lambda: NOW)
    first = pruner.step()
    assert first.more  # a full batch went: the next step comes soon
    assert span_count(connection) == 6
    pruner.step()
    assert span_count(connection) == 1  # the young one stays


def test_over_its_size_the_store_prunes_the_services_spans_whatever_their_age(
    connection: sqlite3.Connection,
) -> None:
    span = Span(TRACE, SPAN, None, "POST /", "order", "server", 1, 2, "unset", None, {})
    for _ in range(10):
        store(connection, span, NOW, None)
    Pruner(connection, AGE, 1, clock=lambda: NOW).step()
    assert span_count(connection) == 0
