"""The broker's own HTTP endpoints: health, metrics, and the journal and topology under `/_shop/`.

`_shop` cannot be a Kubernetes namespace (no underscores), so these paths never clash with a
broker's `/<namespace>/<broker>`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from shop.broker.config import retention_text
from shop.broker.http_server import JSON, Request, Response
from shop.broker.journal import Journal
from shop.broker.metrics import CONTENT_TYPE, BrokerMetrics
from shop.broker.routes import Routes, TriggerRoute
from shop.broker.spans import TRACE_ID, TraceReader
from wire.knative import DeliverySpec, Destination
from wire.topology import broker_json, topology_document, trigger_json

PREFIX = "/_shop"


class ObservabilityApi:
    """Answers GETs of `/healthz`, `/metrics` and `/_shop/...`."""

    def __init__(
        self,
        routes: Routes,
        journal: Journal,
        metrics: BrokerMetrics,
        traces: TraceReader | None = None,
    ) -> None:
        self._routes = routes
        self._journal = journal
        self._metrics = metrics
        self._traces = traces
        self._topology = json.dumps(routes_document(routes)).encode()
        self._by_path: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/healthz": self.healthz,
            "/metrics": self.metrics,
            f"{PREFIX}/events": self.events,
            f"{PREFIX}/deadletters": self.dead_letters,
            f"{PREFIX}/topology": self.topology,
        }

    async def respond(self, request: Request) -> Response | None:
        """The answer to a GET of one of these endpoints, or None for any other path."""
        handler = self._by_path.get(request.path)
        if handler is not None:
            return await handler(request)
        if request.path.startswith(f"{PREFIX}/events/"):
            return await self.event(request.path[len(f"{PREFIX}/events/") :])
        if request.path.startswith(f"{PREFIX}/traces/") and self._traces is not None:
            return await self.trace(request.path[len(f"{PREFIX}/traces/") :])
        return None

    async def trace(self, trace_id: str) -> Response:
        """`GET /_shop/traces/<trace_id>`: every span of the trace, the broker's and the
        services', by start (docs/observability.md, "Traces under shop up")."""
        assert self._traces is not None
        if not TRACE_ID.fullmatch(trace_id):
            return _json(
                {
                    "error": f"a trace id is 32 lowercase hex digits, not {trace_id[:40]!r}",
                    "field": "trace_id",
                },
                400,
            )
        spans = await asyncio.to_thread(self._traces.trace, trace_id)
        if not spans:
            return _json({"error": f"no spans of trace {trace_id}"}, 404)
        return _json({"trace_id": trace_id, "spans": [span.to_json() for span in spans]})

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        # On the loop: the counters are plain ints that only the loop's thread changes.
        return Response(200, self._metrics.exposition(), content_type=CONTENT_TYPE)

    async def events(self, request: Request) -> Response:
        try:
            after, limit = _paging(request)
        except ValueError as error:
            return _json({"error": str(error)}, 400)
        data = request.query.get("data", "0")
        if data not in ("0", "1"):
            return _json({"error": f"data must be 0 or 1, not {data[:40]!r}"}, 400)
        events, history = await asyncio.to_thread(self._events, after, limit, data == "1")
        next_after = events[-1]["seq"] if events else after
        return _json({"events": events, "next_after": next_after, **history})

    def _events(
        self, after: int, limit: int, data: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # The history is read after the events, so that any event pruned before it was read
        # is below the boundary it states.
        events = self._journal.events(after, limit, data)
        return events, self._journal.history()

    async def event(self, seq_text: str) -> Response:
        try:
            seq = _integer(seq_text, "seq")
        except ValueError as error:
            return _json({"error": str(error)}, 400)
        event = await asyncio.to_thread(self._journal.event, seq)
        if event is None:
            return _json({"error": await asyncio.to_thread(self._missing, seq)}, 404)
        return _json(event)

    def _missing(self, seq: int) -> str:
        history = self._journal.history()
        pruned_before = history["pruned_before_seq"]
        if pruned_before is not None and seq < pruned_before:
            retention = history["retention"]
            policy = retention_text(retention["age_seconds"], retention["max_bytes"])
            return f"no event with seq {seq}: it was pruned (retention: {policy})"
        return f"no event with seq {seq}"

    async def dead_letters(self, request: Request) -> Response:
        try:
            after, limit = _paging(request)
        except ValueError as error:
            return _json({"error": str(error)}, 400)
        items = await asyncio.to_thread(self._journal.dead_letters, after, limit)
        next_after = items[-1]["seq"] if items else after
        return _json({"dead_letters": items, "next_after": next_after})

    async def topology(self, request: Request) -> Response:
        # The routes are fixed at start-up, and so is their document.
        return Response(200, self._topology, content_type=JSON)


def routes_document(routes: Routes) -> dict[str, Any]:
    """The topology document (wire.topology) of what this broker routes, by the URLs it posts to.

    A trigger's `deadLetterSink` is its effective one; the brokers carry none of their own.
    """
    return topology_document(
        [
            broker_json(
                broker.namespace,
                broker.name,
                url=broker.url,
                triggers=[trigger.name for trigger in broker.triggers],
            )
            for broker in routes.brokers.values()
        ],
        [_trigger(route) for route in routes.triggers.values()],
    )


def _json(document: object, status: int = 200) -> Response:
    return Response(status, json.dumps(document).encode(), content_type=JSON)


def _trigger(route: TriggerRoute) -> dict[str, Any]:
    dead_letter = route.dead_letter_url
    return trigger_json(
        route.namespace,
        route.name,
        route.broker,
        Destination(uri=route.subscriber_url),
        dead_letter_sink=None if dead_letter is None else Destination(uri=dead_letter),
        spec=route.filter_spec,
        delivery=_delivery(route.delivery),
        concurrency=route.concurrency,
    )


def _delivery(spec: DeliverySpec) -> dict[str, Any]:
    """The effective delivery of a trigger, durations in seconds."""
    return {
        "retry": spec.retry,
        "backoffPolicy": spec.backoff_policy,
        "backoffDelaySeconds": spec.backoff_delay,
        "timeoutSeconds": spec.timeout,
        "retryAfterMaxSeconds": spec.retry_after_max,
        "format": spec.format,
    }


def _paging(request: Request) -> tuple[int, int]:
    query = request.query
    return _integer(query.get("after", "0"), "after"), _integer(query.get("limit", "100"), "limit")


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {text!r}") from None
