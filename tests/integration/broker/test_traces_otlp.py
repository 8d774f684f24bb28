"""The broker's OTLP/HTTP receiver (`POST /v1/traces`), fed by the OpenTelemetry SDK's own
exporter, and what it answers to bodies that are not an export."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.integration.broker.conftest import StartBroker, StartIdentityBroker
from tests.support.broker_process import BrokerProcess, broker_manifest
from tests.support.events import binary_request
from tests.support.processes import wait_for

MAX_OTLP_BYTES = 4 * 1024 * 1024
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def broker(start_broker: StartBroker) -> BrokerProcess:
    return start_broker([broker_manifest()])


def trace_of(broker: BrokerProcess, trace_id: str, spans: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        response = requests.get(f"{broker.url}/_shop/traces/{trace_id}", timeout=5)
        if response.status_code == 404:
            return None
        found: list[dict[str, Any]] = response.json()["spans"]
        return found if len(found) >= spans else None

    found: list[dict[str, Any]] = wait_for(probe, timeout=10, what=f"the spans of {trace_id}")
    return found


def export_two_spans(endpoint: str, compression: Compression = Compression.NoCompression) -> str:
    """A service's parent and child span, exported by the SDK to `endpoint`; the trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "order"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, compression=compression))
    )
    tracer = provider.get_tracer("tests.otlp")
    with tracer.start_as_current_span("POST /", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.response.status_code", 202)
        with tracer.start_as_current_span("order.created handle", kind=SpanKind.CONSUMER) as child:
            child.set_attributes(
                {"shop.ratio": 0.5, "shop.retried": False, "shop.skus": ["a", "b"]}
            )
            child.set_status(Status(StatusCode.ERROR, "out of stock"))
    provider.shutdown()
    return f"{parent.get_span_context().trace_id:032x}"


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"]
)
def test_spans_the_sdk_exports_come_back_through_the_trace_api(
    broker: BrokerProcess, compression: Compression
) -> None:
    trace_id = export_two_spans(f"{broker.url}/v1/traces", compression)
    server, consumer = trace_of(broker, trace_id, 2)
    assert (server["name"], server["kind"], server["service"]) == ("POST /", "server", "order")
    assert server["parent_span_id"] is None
    assert server["attributes"]["http.response.status_code"] == 202
    assert server["attributes"]["otel.scope.name"] == "tests.otlp"
    assert consumer["parent_span_id"] == server["span_id"]
    assert (consumer["kind"], consumer["status"]) == ("consumer", "error")
    assert consumer["status_message"] == "out of stock"
    assert consumer["attributes"]["shop.ratio"] == 0.5
    assert consumer["attributes"]["shop.retried"] is False
    assert consumer["attributes"]["shop.skus"] == '["a", "b"]'
    assert consumer["end_unix_nano"] >= consumer["start_unix_nano"] > 0


def test_a_protobuf_export_is_answered_with_an_export_response(broker: BrokerProcess) -> None:
    response = requests.post(
        f"{broker.url}/v1/traces",
        data=ExportTraceServiceRequest().SerializeToString(),
        headers=PROTOBUF,
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")


def test_otlp_json_with_hex_ids_is_taken_and_bad_ids_are_a_partial_success(
    broker: BrokerProcess,
) -> None:
    trace_id = "5b8efff798038103d269b633813fc60c"
    span = {
        "traceId": trace_id,
        "spanId": "eee19b7ec3c1b174",
        "name": "json span",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
        "attributes": [{"key": "n", "value": {"intValue": "7"}}],
    }
    bad = {**span, "spanId": "ee", "name": "short id"}
    export = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "viewer"}}]
                },
                "scopeSpans": [{"spans": [span, bad]}],
            }
        ]
    }
    response = requests.post(f"{broker.url}/v1/traces", json=export, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "short id" in response.json()["partialSuccess"]["errorMessage"]
    (stored,) = trace_of(broker, trace_id, 1)
    assert stored["span_id"] == "eee19b7ec3c1b174"
    assert (stored["service"], stored["kind"], stored["name"]) == ("viewer", "client", "json span")
    assert stored["attributes"] == {"n": 7}
    assert stored["start_unix_nano"] == 1700000000000000000


@pytest.mark.parametrize(
    ("headers", "body", "status", "member"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff", 400, "field"),
        ({"Content-Type": "application/json"}, b"[1, 2]", 400, "field"),
        ({"Content-Type": "application/json"}, b"{not json", 400, "field"),
        (
            {"Content-Type": "application/json"},
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}),
            400,
            "field",
        ),
        ({"Content-Type": "text/plain"}, b"hello", 415, "field"),
        ({**PROTOBUF, "Content-Encoding": "br"}, b"x", 415, "field"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip", 400, "field"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, gzip.compress(b"\0" * 100)[:20], 400, "field"),
        (
            {**PROTOBUF, "Content-Encoding": "gzip"},
            gzip.compress(b"\0" * (MAX_OTLP_BYTES + 1)),
            413,
            "limit",
        ),
        (PROTOBUF, b"\0" * (MAX_OTLP_BYTES + 1), 413, "limit"),
    ],
    ids=[
        "not-protobuf",
        "json-not-an-object",
        "not-json",
        "json-id-not-hex",
        "content-type",
        "content-encoding",
        "not-gzip",
        "truncated-gzip",
        "gzip-bomb",
        "too-large",
    ],
)
def test_a_body_that_is_not_an_export_is_refused_with_json(
    broker: BrokerProcess, headers: dict[str, str], body: bytes | str, status: int, member: str
) -> None:
    response = requests.post(f"{broker.url}/v1/traces", data=body, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    document = response.json()
    assert document["error"]
    assert member in document
    if status == 413:
        assert document["limit"] == MAX_OTLP_BYTES
        assert str(MAX_OTLP_BYTES) in document["error"]


def test_an_export_larger_than_an_event_may_be_is_taken(start_broker: StartBroker) -> None:
    """The receiver's limit is its own, not the ingress's `--max-event-bytes`: the SDK sends
    up to 512 spans at once."""
    broker = start_broker([broker_manifest()])
    export = ExportTraceServiceRequest()
    scope = export.resource_spans.add().scope_spans.add()
    for n in range(6000):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex("ab" * 16)
        span.span_id = n.to_bytes(8, "big") if n else b"\1" * 8
        span.name = f"span {n:04d} " + "x" * 150
    body = export.SerializeToString()
    assert 1024 * 1024 < len(body) < MAX_OTLP_BYTES
    response = requests.post(f"{broker.url}/v1/traces", data=body, headers=PROTOBUF, timeout=10)
    assert response.status_code == 200, response.text
    assert len(trace_of(broker, "ab" * 16, 6000)) == 6000


def test_the_receiver_asks_no_sender_identity(
    start_identity_broker: StartIdentityBroker,
) -> None:
    broker = start_identity_broker([broker_manifest()])
    headers, body = binary_request("test.no-token")
    refused = requests.post(broker.ingress(), headers=headers, data=body, timeout=5)
    assert refused.status_code == 401  # the ingress asks for a token ...
    trace_id = export_two_spans(f"{broker.url}/v1/traces")
    assert len(trace_of(broker, trace_id, 2)) == 2  # ... the receiver does not


def test_only_post_is_allowed(broker: BrokerProcess) -> None:
    response = requests.get(f"{broker.url}/v1/traces", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "POST" in response.json()["error"]
