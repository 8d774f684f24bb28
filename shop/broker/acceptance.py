"""Taking a valid event into a broker: arrival time, hop counter, filters, the durable write.

The HTTP ingress and the subscribers' replies both come through here, so a reply is accepted
exactly as a producer's event is (new arrival time, hop counter minus one).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from shop.broker.admission import (
    ARRIVAL_ATTRIBUTE,
    TTL_ATTRIBUTE,
    Headers,
    arrival_time,
    filter_view,
    next_ttl,
)
from shop.broker.envelope import Envelope
from shop.broker.metrics import BrokerMetrics
from shop.broker.routes import BrokerRoute, TriggerRoute
from shop.broker.store import Writer
from wire.errors import Problem
from wire.http_binding import WireEvent
from wire.spec import Attributes, AttributeValue

if TYPE_CHECKING:
    from shop.broker.tracing import SpanContext

log = logging.getLogger(__name__)


class Refused(Problem):
    """An event the ingress answers with an error status instead of accepting it; `headers`
    go on the answer (`WWW-Authenticate`, `Retry-After`)."""

    def __init__(
        self,
        status: int,
        message: str,
        attribute: str | None = None,
        *,
        field: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(status, message, field=field, attribute=attribute)
        self.headers = headers


class Acceptor:
    """Stamps, filters and durably stores events for the brokers of one process."""

    def __init__(self, writer: Writer, metrics: BrokerMetrics) -> None:
        self._writer = writer
        self._metrics = metrics

    async def accept(
        self,
        broker: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        parent: tuple[int, str] | None = None,
        trace: SpanContext | None = None,
    ) -> Envelope:
        """Store `event` for every trigger of `broker` whose filter it passes; raise Refused.

        Returns once the event is committed: the caller may answer 202. `trace` is the event's
        receive span, the parent of its delivery spans.
        """
        now = time.time()
        stamped = stamp(event, now)
        view = filter_view(stamped.attributes)
        matched = []
        for trigger in broker.triggers:
            if _passes(trigger, view):
                matched.append(trigger.key)
            else:
                self._metrics.filtered(trigger.key)
        envelope = Envelope(
            broker=broker.key,
            event=stamped,
            headers=headers,
            arrival=now,
            parent_seq=None if parent is None else parent[0],
            parent_trigger=None if parent is None else parent[1],
            trace=trace,
        )
        return await self._writer.accept(envelope, tuple(matched))


def stamp(event: WireEvent, now: float) -> WireEvent:
    """The event as a broker takes it in: arrival time set, hop counter minus one; Refused
    (400) when the hop counter is exhausted. Every broker class's ingress calls this."""
    ttl = next_ttl(event.attributes.get(TTL_ATTRIBUTE))
    if ttl <= 0:
        raise Refused(
            400,
            "the event's knativebrokerttl is exhausted (a reply loop?); dropped",
            TTL_ATTRIBUTE,
        )
    stamps: dict[str, AttributeValue | None] = {
        ARRIVAL_ATTRIBUTE: arrival_time(datetime.fromtimestamp(now, UTC)),
        TTL_ATTRIBUTE: ttl,
    }
    return event.with_attributes(**stamps)


class Accepts(Protocol):
    """What the HTTP ingress hands a valid event to: the store's Acceptor, or a broker class's
    own data plane (shop.broker.rabbitmq)."""

    async def accept(
        self,
        broker: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        *,
        trace: SpanContext | None = None,
    ) -> object:
        """Take the event for `broker`; return once it is durable (an Envelope when the store
        took it); raise Refused. `trace`: the event's receive span."""
        ...


def matching_triggers(broker: BrokerRoute, attributes: Attributes) -> tuple[str, ...]:
    """The keys of the Triggers of `broker` whose filter passes `attributes` (the filter view):
    where the store's brokers route an event (a replay asks too)."""
    return tuple(trigger.key for trigger in broker.triggers if _passes(trigger, attributes))


def _passes(trigger: TriggerRoute, attributes: Attributes) -> bool:
    """Whether the trigger's filter lets the event through; a filter that breaks means no match."""
    try:
        return trigger.matches(attributes)
    except Exception:
        # Knative treats a filter evaluation error as "no match"; say so instead of hiding it.
        log.exception(
            "the filter of trigger %s failed on an event; treated as no match", trigger.key
        )
        return False
