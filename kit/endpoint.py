"""The kit's `POST /`: CloudEvents in, answers out, in front of the service's Flask router.

Every event a service receives comes this way, so it is the hot path. It needs none of Flask's
routing, request context or response objects: a WSGI layer in front of the Flask app answers
`POST /` itself and passes every other request on. Measured under gunicorn, that halves what the
kit adds to a request (docs/benchmarks.md). Handlers never see HTTP either way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from kit.errors import RetryLater
from kit.idempotency import Outcome
from kit.logs import OutcomeLog
from kit.metrics import KitMetrics
from kit.receive import ce_headers, read_body
from kit.sender_identity import SenderCheck
from kit.tracing import DELIVERY_TRACEPARENT, trace_id
from kit.unavailable import cause_of, retry_later_for
from wire.http_binding import Mode, WireEvent, parse_request
from wire.spec import InvalidEvent

log = logging.getLogger("shop.kit")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
#: The endpoint name of the Flask rule for `/`, whose POST this endpoint answers instead.
EVENTS_RULE = "events"


class EventSink(Protocol):
    """What the endpoint needs of the service behind it."""

    name: str
    metrics: KitMetrics
    outcomes: OutcomeLog

    @property
    def max_event_bytes(self) -> int: ...

    def handles(self, event_type: str) -> bool: ...

    def handle(self, wire: WireEvent, *, in_batch: bool = False) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """An HTTP response: status, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def empty_answer(status: int) -> HttpAnswer:
    """A 2xx with no body: an event taken and nothing to reply."""
    return HttpAnswer(status, [("Content-Length", "0")])


def json_answer(status: int, document: dict[str, Any], **headers: str) -> HttpAnswer:
    """An error answer: a JSON body that says what is wrong."""
    body = json.dumps(document).encode()
    return HttpAnswer(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ],
        body,
    )


class EventEndpoint:
    """WSGI: `POST /` is the service's CloudEvents sink; anything else goes to its Flask app.

    With `senders`, a request whose sender it refuses is answered before its body is read.
    """

    def __init__(self, sink: EventSink, app: WsgiApp, senders: SenderCheck | None = None) -> None:
        self._sink = sink
        #: What answers every other request (the service's Flask app).
        self.routes = app
        self._senders = senders

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO", "/") not in (
            "/",
            "",
        ):
            return self.routes(environ, start_response)
        answer = self.receive(environ)
        start_response(_STATUS_LINES[answer.status], answer.headers)
        return [answer.body]

    def receive(self, environ: dict[str, Any]) -> HttpAnswer:
        """Read, validate and handle the events of one request; the answer to send."""
        sink = self._sink
        if self._senders is not None:
            refused = self._senders.refusal(environ.get("HTTP_AUTHORIZATION"))
            if refused is not None:
                return json_answer(refused.status, refused.body, **refused.headers)
        try:
            body = read_body(environ, sink.max_event_bytes)
            mode, events = parse_request(environ.get("CONTENT_TYPE"), ce_headers(environ), body)
        except InvalidEvent as error:
            sink.metrics.received.labels("", "invalid").inc()
            log.info(
                "invalid event refused: %s",
                error.message,
                extra={"outcome": "invalid", "status": error.status},
            )
            return json_answer(error.status, error.to_json())
        traceparent = environ.get("HTTP_TRACEPARENT")
        if traceparent:
            # A broker may carry the trace context as the W3C header instead of the event's
            # extension (eventing-rabbitmq's dispatcher does): the event continues that trace.
            events = [
                e if "traceparent" in e.attributes else e.with_attributes(traceparent=traceparent)
                for e in events
            ]
        delivery = DELIVERY_TRACEPARENT.set(traceparent)
        try:
            if mode is not Mode.BATCH:
                return self._handle_one(events[0], in_batch=False)
            for event in events:
                answer = self._handle_one(event, in_batch=True)
                if answer.status >= 300:
                    return answer
            return empty_answer(202)
        finally:
            DELIVERY_TRACEPARENT.reset(delivery)

    def _handle_one(self, wire: WireEvent, *, in_batch: bool) -> HttpAnswer:
        sink = self._sink
        started = time.perf_counter()
        outcome, answer = self._respond(wire, in_batch)
        elapsed = time.perf_counter() - started
        # Types without a handler share one label: senders must not grow the metric without bound.
        label = wire.type if sink.handles(wire.type) else "(no handler)"
        sink.metrics.observe(label, outcome, elapsed)
        sink.outcomes.write(
            logging.INFO if answer.status < 500 else logging.WARNING,
            f"event {outcome}",
            {
                "service": sink.name,
                "event_id": wire.id,
                "type": wire.type,
                "source": wire.source,
                "trace_id": trace_id(wire.get("traceparent")),
                "outcome": outcome,
                "status": answer.status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
        return answer

    def _respond(self, wire: WireEvent, in_batch: bool) -> tuple[str, HttpAnswer]:
        try:
            outcome = self._sink.handle(wire, in_batch=in_batch)
        except InvalidEvent as error:
            return "rejected", json_answer(error.status, error.to_json())
        except RetryLater as error:
            return "retry", _retry_answer(error)
        except Exception as error:
            retry = retry_later_for(error)
            if retry is not None:
                log.warning(
                    "%s: %s",
                    retry.reason,
                    cause_of(error),
                    extra={"event_id": wire.id, "type": wire.type, "source": wire.source},
                )
                return "retry", _retry_answer(retry)
            log.exception(
                "handler failed",
                extra={"event_id": wire.id, "type": wire.type, "source": wire.source},
            )
            return "error", json_answer(500, {"error": f"handling event {wire.id!r} failed"})
        answer = outcome.answer
        label = "duplicate" if outcome.duplicate else "replied" if answer.reply else "handled"
        if answer.reply is None:
            return label, empty_answer(answer.status)
        reply = answer.reply
        headers = [*reply.headers.items(), ("Content-Length", str(len(reply.body)))]
        return label, HttpAnswer(answer.status, headers, reply.body)


def _retry_answer(error: RetryLater) -> HttpAnswer:
    return json_answer(503, error.to_json(), **error.headers())
