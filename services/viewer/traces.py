"""`GET /api/traces/<trace_id>`: one trace's spans, as the local broker stores them.

Under `shop up` the broker takes the services' spans over OTLP (`POST /v1/traces`) and records
its own (ingress, each delivery attempt, dead letters); `GET /_shop/traces/<trace_id>` answers
`{"trace_id", "spans": [...]}` sorted by start, or 404. The viewer passes that answer through
unchanged, a 404 included: the page draws the waterfall from it.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response

from kit import RequestError
from services.viewer.broker_reads import broker_reads, passed_through
from wire.strings import quote

TRACES_PATH = "/_shop/traces"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

routes = Blueprint("viewer_traces", __name__)


@routes.get("/api/traces/<trace_id>")
def show_trace(trace_id: str) -> Response:
    """The broker's spans of `trace_id` (32 lowercase hex digits, a traceparent's second part)."""
    if not _TRACE_ID.match(trace_id):
        raise RequestError(
            400,
            f"trace_id must be 32 lowercase hex digits, not {quote(trace_id[:80])}",
            "trace_id",
        )
    return passed_through(broker_reads().get(f"{TRACES_PATH}/{trace_id}"))
