"""The OTLP/HTTP trace receiver on the broker's port: `POST /v1/traces`, as a collector answers.

OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp): the body is an
ExportTraceServiceRequest, binary protobuf (`application/x-protobuf`) or its JSON encoding
(`application/json`, trace and span ids in hex), optionally gzip-compressed. A success is 200
with an ExportTraceServiceResponse in the request's encoding, empty, or with `partial_success`
counting the spans refused (an id of the wrong length) and saying why. A body that is not such
a message is 400; one over MAX_BODY_BYTES (compressed or not) 413; every error body is the
broker's JSON error. It is a telemetry endpoint of the local machine: no sender identity is
asked for, as a collector's receiver asks none by default.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus

from shop.broker.http_server import JSON, Request, Response
from shop.broker.spans import AttributeValue, Kind, Span, Status
from wire.errors import Problem

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
#: The longest body taken, compressed, and again once decompressed.
MAX_BODY_BYTES = 4 * 1024 * 1024
UNKNOWN_SERVICE = "unknown_service"
# SQLite's INTEGER is signed 64-bit; OTLP's times are unsigned.
_MAX_TIME = 2**63 - 1

_KINDS: dict[int, Kind] = {
    ProtoSpan.SPAN_KIND_UNSPECIFIED: "internal",
    ProtoSpan.SPAN_KIND_INTERNAL: "internal",
    ProtoSpan.SPAN_KIND_SERVER: "server",
    ProtoSpan.SPAN_KIND_CLIENT: "client",
    ProtoSpan.SPAN_KIND_PRODUCER: "producer",
    ProtoSpan.SPAN_KIND_CONSUMER: "consumer",
}
_STATUSES: dict[int, Status] = {
    ProtoStatus.STATUS_CODE_UNSET: "unset",
    ProtoStatus.STATUS_CODE_OK: "ok",
    ProtoStatus.STATUS_CODE_ERROR: "error",
}
# Members of the JSON encoding that hold ids: hex there, base64 in protobuf's JSON mapping.
_ID_MEMBERS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpReceiver:
    """Answers `POST /v1/traces`; the spans it takes go to `store`."""

    def __init__(self, store: Callable[[Sequence[Span]], None]) -> None:
        self._store = store

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(
                Problem(405, f"method {request.method} is not allowed; POST OTLP exports"),
                (("Allow", "POST"),),
            )
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if content_type not in (PROTOBUF, JSON):
                raise Problem(
                    415,
                    f"Content-Type must be {PROTOBUF} or {JSON}, not {content_type[:60]!r}",
                    field="Content-Type",
                )
            body = _decoded(request.body, request.header("Content-Encoding"))
            export = _parse(body, content_type)
        except Problem as problem:
            return _error(problem)
        spans, rejected = spans_of(export)
        self._store(spans)
        answer = ExportTraceServiceResponse()
        if rejected:
            answer.partial_success.rejected_spans = len(rejected)
            answer.partial_success.error_message = "; ".join(rejected[:5])
        if content_type == JSON:
            return Response(200, json_format.MessageToJson(answer).encode(), content_type=JSON)
        return Response(200, answer.SerializeToString(), content_type=PROTOBUF)


def _error(problem: Problem, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(
        problem.status, json.dumps(problem.to_json()).encode(), headers, content_type=JSON
    )


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """The body without its Content-Encoding (none or gzip), at most MAX_BODY_BYTES."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise Problem(
            415,
            f"Content-Encoding must be gzip or none, not {coding[:40]!r}",
            field="Content-Encoding",
        )
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise Problem(400, f"the body is not valid gzip: {error}", field="body") from None
    if len(data) > MAX_BODY_BYTES or decompressor.unconsumed_tail:
        raise Problem(
            413, f"the decompressed body exceeds {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES
        )
    if not decompressor.eof:
        raise Problem(400, "the gzip body is truncated", field="body")
    return data


def _parse(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The export a body holds; 400 when it holds none."""
    export = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            export.ParseFromString(body)
        except DecodeError as error:
            raise Problem(
                400, f"the body is not an OTLP ExportTraceServiceRequest: {error}", field="body"
            ) from None
        return export
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object")
        json_format.ParseDict(_ids_as_base64(document), export, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError, RecursionError) as error:
        raise Problem(
            400, f"the body is not an OTLP/JSON ExportTraceServiceRequest: {error}", field="body"
        ) from None
    return export


def _ids_as_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON's hex ids turned into protobuf's JSON mapping of bytes (base64), in place."""
    for resource in _members(document, "resourceSpans", "resource_spans"):
        for scope in _members(resource, "scopeSpans", "scope_spans"):
            for span in _members(scope, "spans"):
                _convert_ids(span)
                for nested in (*_members(span, "links"), *_members(span, "events")):
                    _convert_ids(nested)
    return document


def _members(parent: object, *names: str) -> Iterable[dict[str, Any]]:
    if not isinstance(parent, dict):
        return ()
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return ()


def _convert_ids(item: dict[str, Any]) -> None:
    for name in _ID_MEMBERS:
        value = item.get(name)
        if isinstance(value, str) and value:
            try:
                item[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ValueError(f"{name} {value[:40]!r} is not hex") from None


def spans_of(export: ExportTraceServiceRequest) -> tuple[list[Span], list[str]]:
    """The export's spans in the store's model, and why each refused one was refused."""
    spans: list[Span] = []
    rejected: list[str] = []
    for resource_spans in export.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                problem = _problem(span)
                if problem is not None:
                    rejected.append(problem)
                    continue
                attributes = attributes_of(span.attributes)
                if scope:
                    attributes.setdefault("otel.scope.name", scope)
                spans.append(
                    Span(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex() or None,
                        span.name,
                        service,
                        _KINDS.get(span.kind, "internal"),
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        _STATUSES.get(span.status.code, "unset"),
                        span.status.message or None,
                        attributes,
                    )
                )
    return spans, rejected


def _problem(span: ProtoSpan) -> str | None:
    """Why the store cannot take `span`, or None."""
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > _MAX_TIME:
        return f"span {span.name[:60]!r}: a time beyond {_MAX_TIME} ns"
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name[:60]!r}: trace_id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name[:60]!r}: span_id must be 8 bytes, not all zero"
    if len(span.parent_span_id) not in (0, 8):
        return f"span {span.name[:60]!r}: parent_span_id must be 8 bytes or empty"
    return None


def attributes_of(pairs: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    """OTLP attributes as the contract's flat values: arrays and maps as JSON text, bytes as
    base64; an attribute without a value is left out."""
    found: dict[str, AttributeValue] = {}
    for pair in pairs:
        value = _plain(pair.value)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # JSON has no NaN or infinity
        plain = isinstance(value, str | int | float | bool)
        found[pair.key] = value if plain else json.dumps(value)
    return found


def _plain(value: AnyValue) -> Any:
    """An AnyValue as a Python value (lists and dicts for arrays and maps); None if unset."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _plain(pair.value) for pair in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)
