"""The broker ingress over HTTP: `/<namespace>/<broker>`, with Knative's checks in Knative's order.

Order (knative/eventing `pkg/broker/ingress/ingress_handler.go`): OPTIONS handshake; only POST;
the path; the body must be a CloudEvent (binary or structured, not batched) and valid; then the
broker must exist; with sender identity on, the sender's token and its authorization
(`shop.broker.authentication`, `shop.broker.authorization`); then the hop counter; then the event
is stored and the answer is 202.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shop.broker.acceptance import Accepts, Refused
from shop.broker.admission import BadPath, broker_of_path, pass_through_headers
from shop.broker.authentication import AUTHORIZATION, Authenticator
from shop.broker.authorization import Authorization, log_refusal
from shop.broker.envelope import Envelope
from shop.broker.http_server import JSON, Request, Response
from shop.broker.metrics import BrokerMetrics
from shop.broker.routes import BrokerRoute, Routes
from shop.broker.store import StoreError, Unstorable
from shop.broker.tracing import TRACEPARENT, BrokerTracer
from wire.http_binding import Mode, WireEvent, content_mode, parse_request
from wire.spec import InvalidEvent

log = logging.getLogger(__name__)

ALLOW = "POST, OPTIONS"
_HANDSHAKE = Response(
    200,
    headers=(("Allow", ALLOW), ("WebHook-Allowed-Origin", "*"), ("WebHook-Allowed-Rate", "*")),
)
_ACCEPTED = Response(202, headers=(("Allow", ALLOW),))
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class SenderCheck:
    """Sender identity at the ingress: whose token it is, and whether that sender may send."""

    authenticator: Authenticator
    authorization: Authorization

    async def check(self, broker: BrokerRoute, request: Request, event: WireEvent) -> None:
        """Raise Refused (401, 403, 503) unless the request's sender may send this event."""
        subject = None
        try:
            subject = await self.authenticator.subject(broker, request.header(AUTHORIZATION))
            reason = self.authorization.refusal(broker.key, subject, event.attributes)
            if reason is not None:
                raise Refused(403, reason)
        except Refused as refused:
            log_refusal(broker.key, refused.status, refused.message, event.attributes, subject)
            raise


class Ingress:
    """The handler for every request that is not a GET of one of the broker's own endpoints."""

    def __init__(
        self,
        routes: Routes,
        acceptor: Accepts,
        metrics: BrokerMetrics,
        room: Callable[[], Awaitable[None]] | None = None,
        senders: SenderCheck | None = None,
        *,
        tracer: BrokerTracer | None = None,
    ) -> None:
        self._routes = routes
        self._acceptor = acceptor
        self._metrics = metrics
        self._room = room
        self._senders = senders
        self._tracer = tracer

    async def handle(self, request: Request) -> Response:
        started = time.time_ns()
        if request.method == "OPTIONS":
            return _HANDSHAKE
        if request.method != "POST":
            return self._refuse(
                _UNKNOWN, Refused(405, f"method {request.method} is not allowed; POST events")
            )
        try:
            namespace, name = broker_of_path(request.path)
        except BadPath as error:
            return self._refuse(_UNKNOWN, Refused(error.status, error.message))
        try:
            event = _event_of(request)
        except Refused as refused:
            return self._refuse(_UNKNOWN, refused)
        broker = self._routes.broker(namespace, name)
        if broker is None:
            return self._refuse(_UNKNOWN, Refused(404, f"broker {namespace}/{name} does not exist"))
        if self._senders is not None:
            try:
                await self._senders.check(broker, request, event)
            except Refused as refused:
                return self._refuse(broker.key, refused)
        if self._room is not None:
            await self._room()
        tracer = self._tracer
        receiving = None
        if tracer is not None:
            receiving = tracer.begin_receive(event.attributes, request.header(TRACEPARENT), started)
        try:
            stored = await self._acceptor.accept(
                broker,
                event,
                pass_through_headers(request.headers),
                trace=None if receiving is None else receiving.context,
            )
        except Refused as refused:
            return self._refuse(broker.key, refused)
        except Unstorable as error:
            return self._refuse(broker.key, Refused(400, str(error)))
        except StoreError as error:
            # The Kafka broker answers 503 when its write fails; the producer should retry.
            return self._refuse(broker.key, Refused(503, f"the event could not be stored: {error}"))
        if tracer is not None and receiving is not None:
            # The store's Envelope, or a RabbitMQBroker's journal seq (None: not journaled).
            seq = stored.seq if isinstance(stored, Envelope) else stored
            tracer.received(
                receiving,
                broker.key,
                event.attributes,
                seq if isinstance(seq, int) else None,
                broker.url,
            )
        self._metrics.ingress(broker.key, 202)
        return _ACCEPTED

    def _refuse(self, broker: str, refused: Refused) -> Response:
        self._metrics.ingress(broker, refused.status)
        return Response(
            refused.status,
            json.dumps(refused.to_json()).encode(),
            headers=(("Allow", ALLOW), *refused.headers),
            content_type=JSON,
        )


def _event_of(request: Request) -> WireEvent:
    """The one valid CloudEvent a request carries; anything else is refused with 400."""
    content_type = request.header("Content-Type")
    try:
        mode = content_mode(content_type)
        if mode is Mode.BATCH:
            raise Refused(400, "batched events are not accepted; send one event per request")
        if mode is Mode.BINARY and not request.has_header("ce-specversion"):
            raise Refused(
                400,
                "not a CloudEvent: no ce-specversion header (binary mode) and Content-Type is not "
                "application/cloudevents+json (structured mode)",
                "specversion",
            )
        _, events = parse_request(content_type, request.headers, request.body)
    except InvalidEvent as error:
        # Knative answers 400 for every request it cannot read as an event (also for formats
        # such as +avro, where a receiver of our own would say 415).
        raise Refused(400, error.message, error.attribute) from None
    return events[0]
