"""An OTLP/HTTP receiver for the benchmarks: takes `POST /v1/traces` and counts the spans.

    python -m shop.bench.otlp_sink PORT

`GET /` answers `{"requests": n, "spans": {service.name: n}}`. It runs as its own process so
that decoding the exports takes nothing from the load generator or the service measured.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

_ANSWER = ExportTraceServiceResponse().SerializeToString()


class _Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.spans: dict[str, int] = {}
        self.lock = threading.Lock()


def _service(resource_spans: ResourceSpans) -> str:
    for attribute in resource_spans.resource.attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


def serve(port: int) -> None:
    counts = _Counts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            export = ExportTraceServiceRequest()
            export.ParseFromString(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            with counts.lock:
                counts.requests += 1
                for resource_spans in export.resource_spans:
                    service = _service(resource_spans)
                    spans = sum(len(s.spans) for s in resource_spans.scope_spans)
                    counts.spans[service] = counts.spans.get(service, 0) + spans
            self._answer(200, "application/x-protobuf", _ANSWER)

        def do_GET(self) -> None:
            with counts.lock:
                body = json.dumps({"requests": counts.requests, "spans": counts.spans}).encode()
            self._answer(200, "application/json", body)

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
