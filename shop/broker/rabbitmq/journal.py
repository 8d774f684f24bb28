"""The journal of a RabbitMQBroker's events: the same SQLite rows the store's brokers write.

RabbitMQ holds a RabbitMQBroker's undelivered events; the broker's SQLite journal still records
each accepted event and every attempt, so that `/_shop/events`, the viewer and `shop tail` read
both classes alike. The event row is written through the store's writer with no pending
deliveries (so neither the store's dispatcher nor a restart's recovery takes it up), and the
journal seq travels with the message as the header `x-shop-seq`. Each trigger whose binding
matches the event has a `deliveries` row in state `queued` from the start: while RabbitMQ
holds the event (queued, retrying, in a dead-letter queue) the journal lists the attempts made
so far, and retention keeps the event. The row takes the final state with the outcome.

The journal never decides an event's fate: if it cannot take an event, the event is published
all the same (the log says the journal misses it) and its attempts go unrecorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import NamedTuple

from shop.broker.envelope import Envelope
from shop.broker.store import DeliveryState, State, StoreError, Unstorable, Writer

log = logging.getLogger(__name__)

#: The message header that carries the event's journal seq (an `x-` header: not an attribute).
SEQ_HEADER = "x-shop-seq"
#: On a dead-lettered message: the trigger whose delivery failed (a broker's dead-letter queue
#: gathers the failures of all its triggers).
TRIGGER_HEADER = "x-shop-trigger"


class Attempt(NamedTuple):
    """One attempt of a RabbitMQ dispatcher, as an `attempts` row records it."""

    trigger: str
    number: int
    target: str  # "subscriber" or "dead_letter_sink", as the store's attempts say
    url: str
    started: float
    seconds: float
    status: int | None
    outcome: str
    error: str | None
    reply_seq: int | None = None


class RabbitJournal:
    """Writes a RabbitMQBroker's events and outcomes through the store's single writer."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def accepted(self, envelope: Envelope, queued: tuple[str, ...]) -> int | None:
        """Journal an accepted event with a `queued` delivery for each trigger whose queue it
        goes to (no pending ones); its seq, None if the store failed."""
        try:
            stored = await self._writer.accept(envelope, (), queued)
        except (StoreError, Unstorable) as error:
            log.error(
                "the journal cannot take event %s of broker %s (%s); it is published to RabbitMQ "
                "all the same, and its deliveries go unrecorded",
                envelope.event.id,
                envelope.broker,
                error,
                extra={"event_id": envelope.event.id, "type": envelope.event.type},
            )
            return None
        return stored.seq

    def refused(
        self, seq: int, broker: str, url: str, status: int, error: str, *, queued: tuple[str, ...]
    ) -> None:
        """The journaled event's publish failed: the producer got `status`, not a 202. Its
        `queued` deliveries are `dropped` (a queue that took the message all the same gets its
        outcome later, and that replaces it)."""
        attempt = Attempt(broker, 1, "rabbitmq", url, time.time(), 0.0, status, "refused", error)
        self._writer.record(attempt=_attempt_row(seq, attempt))
        for trigger in queued:
            self._writer.record(delivery=DeliveryState(seq, trigger, State.DROPPED, 0))

    def attempt(self, seq: int | None, attempt: Attempt) -> None:
        """Record one attempt of a trigger's delivery whose outcome is not final yet: the
        delivery stays `queued`, with its count (nothing for an event the journal misses)."""
        if seq is None:
            return
        delivery = DeliveryState(seq, attempt.trigger, State.QUEUED, attempt.number)
        self._writer.record(attempt=_attempt_row(seq, attempt), delivery=delivery)

    def finished(self, seq: int | None, attempt: Attempt, state: State) -> None:
        """Record the final attempt of a trigger's delivery and the delivery's final `state`."""
        if seq is None:
            return
        delivery = DeliveryState(seq, attempt.trigger, state, attempt.number)
        self._writer.record(attempt=_attempt_row(seq, attempt), delivery=delivery)


def _attempt_row(seq: int, attempt: Attempt) -> tuple[object, ...]:
    return (
        seq,
        attempt.trigger,
        attempt.number,
        attempt.target,
        attempt.url,
        attempt.started,
        round(attempt.seconds * 1000, 3),
        attempt.status,
        attempt.outcome,
        attempt.error,
        attempt.reply_seq,
    )


def seq_of(headers: Mapping[str, object] | None) -> int | None:
    """The journal seq a message carries, if any."""
    value = (headers or {}).get(SEQ_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
