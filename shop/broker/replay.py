"""Sending journaled events again: a replay of a range, and a dead letter back to its Trigger.

A resent event is the same event (same `id`, `source`, data and every attribute) accepted anew:
a new journal entry with a new seq and a new `knativearrivaltime` (so a dead-letter sink tells
a second failure from the first), its hop counter as the first acceptance left it. It goes
either through the broker's routing (every Trigger that matches: what a producer's event gets)
or to the Trigger queues named, and nowhere else. Subscribers de-duplicate on (`source`, `id`):
to an idempotent subscriber that already handled the event, a replay is a no-op. This is the
equivalent of resetting a Kafka consumer group's offset: the records are consumed again.

Each broker class resends its own way (`Resends`): the store writes the event with pending
deliveries for the Triggers, a RabbitMQBroker publishes it to its exchange or to the Triggers'
queues. What to replay is read from the journal here, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from shop.broker.acceptance import matching_triggers
from shop.broker.admission import (
    ARRIVAL_ATTRIBUTE,
    TTL_ATTRIBUTE,
    Headers,
    arrival_time,
    filter_view,
    next_ttl,
)
from shop.broker.envelope import Envelope
from shop.broker.routes import BrokerRoute, Routes
from shop.broker.store import EVENT_COLUMNS, StoreError, Unstorable, Writer
from wire.errors import Problem
from wire.http_binding import WireEvent
from wire.knative.filters import Predicate
from wire.spec import Attributes

log = logging.getLogger(__name__)

_PAGE = 500
_SEND_BATCH = 100


class Resends(Protocol):
    """How a broker class sends an event again (the store's brokers, RabbitMQBrokers)."""

    def targets(self, broker: BrokerRoute, event: WireEvent) -> tuple[str, ...]:
        """The Triggers of `broker` the broker's routing would give `event` to."""
        ...

    async def resend(
        self,
        broker: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        triggers: tuple[str, ...],
        *,
        routed: bool,
    ) -> int | None:
        """Accept `event` (stamped already) again for `triggers`: `routed`, through the broker's
        routing (they are its targets), else straight to those Triggers only. Its new journal
        seq (None: the journal missed it); raise Problem, StoreError or Unstorable."""
        ...


class StoreResender:
    """The store's brokers: the event stored with a pending delivery for each Trigger."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def targets(self, broker: BrokerRoute, event: WireEvent) -> tuple[str, ...]:
        return matching_triggers(broker, filter_view(event.attributes))

    async def resend(
        self,
        broker: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        triggers: tuple[str, ...],
        *,
        routed: bool,
    ) -> int | None:
        # The store's routing is the filters: routed or not, the Triggers get one delivery each.
        envelope = await self._writer.accept(
            Envelope(broker.key, event, headers, time.time()), triggers
        )
        return envelope.seq


def restamp(event: WireEvent, now: float) -> WireEvent:
    """The event as it is accepted again: a new arrival time, its hop counter kept (one the
    event lacks is given as the ingress gives it)."""
    stamps: dict[str, Any] = {ARRIVAL_ATTRIBUTE: arrival_time(datetime.fromtimestamp(now, UTC))}
    if event.attributes.get(TTL_ATTRIBUTE) is None:
        stamps[TTL_ATTRIBUTE] = next_ttl(None)
    return event.with_attributes(**stamps)


@dataclass(frozen=True)
class ReplayRange:
    """Which journaled events a replay takes: seq > `after`, up to `until_seq` and arrived by
    `until_time` (epoch seconds), passing `matches`, for `trigger` only (its key) or for every
    Trigger that matches."""

    after: int = 0
    until_seq: int | None = None
    until_time: float | None = None
    matches: Predicate | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class Planned:
    """One event a replay sends (or would send), and to which Triggers."""

    seq: int
    broker: str
    id: str
    type: str
    subject: str | None
    triggers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "broker": self.broker,
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "triggers": list(self.triggers),
        }


@dataclass(frozen=True)
class Plan:
    """What a replay sends, in seq order, and the highest seq it looked at (a later run with
    `until_seq` set to it takes no event that arrived since)."""

    events: tuple[Planned, ...]
    last_seq: int
    #: Through each broker's routing (no Trigger was named), else to the named Trigger only.
    routed: bool = True


@dataclass(frozen=True)
class Sent:
    """How resending one planned event went: its new seq, or why it was not taken."""

    planned: Planned
    new_seq: int | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        document = self.planned.to_json()
        document["new_seq"] = self.new_seq
        if self.error is not None:
            document["error"] = self.error
        return document


class Replayer:
    """Plans replays from the journal and resends events through each broker's class."""

    def __init__(
        self,
        database: Path,
        routes: Routes,
        resenders: Callable[[str], Resends],
        room: Callable[[], Awaitable[None]],
        limit: int,
    ) -> None:
        self._database = database
        self._brokers = {broker.key: broker for broker in routes.brokers.values()}
        self._routes = routes
        self._resender_of = resenders
        self._room = room
        self.limit = limit

    def broker(self, key: str) -> BrokerRoute | None:
        return self._brokers.get(key)

    def trigger_key(self, name: str) -> str:
        """A Trigger's key from `ns/name` or a name alone; Problem (400) naming the field."""
        keys = sorted(self._routes.triggers)
        if "/" in name:
            if name in self._routes.triggers:
                return name
            found = []
        else:
            found = [key for key in keys if key.split("/", 1)[1] == name]
            if len(found) == 1:
                return found[0]
        if found:
            raise Problem(
                400,
                f"trigger {name!r} is in several namespaces: {', '.join(found)}",
                field="trigger",
            )
        raise Problem(
            400, f"no trigger {name!r}; the triggers are: {', '.join(keys)}", field="trigger"
        )

    async def plan(self, chosen: ReplayRange) -> Plan:
        """The events of the range and their Triggers; Problem (400) above the limit."""
        return await asyncio.to_thread(self._plan, chosen)

    def _plan(self, chosen: ReplayRange) -> Plan:
        planned: list[Planned] = []
        last_seq = chosen.after
        for seq, broker_key, attributes in self._candidates(chosen):
            last_seq = seq
            broker = self._brokers.get(broker_key)
            if broker is None:
                continue
            if chosen.matches is not None and not _passes(chosen.matches, filter_view(attributes)):
                continue
            triggers = self._resender_of(broker_key).targets(broker, WireEvent(attributes))
            if chosen.trigger is not None:
                triggers = tuple(key for key in triggers if key == chosen.trigger)
            if not triggers:
                continue
            if len(planned) == self.limit:
                raise Problem(
                    400,
                    f"the range holds more than {self.limit} events to send, the most one replay "
                    "sends: narrow it with after, until or filter",
                    field="until",
                    limit=self.limit,
                )
            subject = attributes.get("subject")
            planned.append(
                Planned(
                    seq,
                    broker_key,
                    str(attributes.get("id")),
                    str(attributes.get("type")),
                    None if subject is None else str(subject),
                    triggers,
                )
            )
        return Plan(tuple(planned), last_seq, routed=chosen.trigger is None)

    def _candidates(self, chosen: ReplayRange) -> Iterator[tuple[int, str, Attributes]]:
        """(seq, broker, attributes) of the range's events, oldest first; an event whose
        publish RabbitMQ refused (its producer got no 202) is not one."""
        conditions = ["seq > ?"]
        bounds: list[object] = []
        if chosen.until_seq is not None:
            conditions.append("seq <= ?")
            bounds.append(chosen.until_seq)
        if chosen.until_time is not None:
            conditions.append("arrival <= ?")
            bounds.append(chosen.until_time)
        query = (
            "SELECT seq, broker, attributes FROM events WHERE "
            + " AND ".join(conditions)
            + " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.event_seq = events.seq"
            " AND a.target = 'rabbitmq' AND a.outcome = 'refused') ORDER BY seq LIMIT ?"
        )
        after = chosen.after
        with _reading(self._database) as connection:
            while True:
                rows = connection.execute(query, (after, *bounds, _PAGE)).fetchall()
                for seq, broker, attributes in rows:
                    yield int(seq), str(broker), json.loads(attributes)
                if len(rows) < _PAGE:
                    return
                after = int(rows[-1][0])

    async def send(self, plan: Plan) -> list[Sent]:
        """Resend every planned event, in seq order, waiting for room as producers do."""
        sent: list[Sent] = []
        for start in range(0, len(plan.events), _SEND_BATCH):
            batch = plan.events[start : start + _SEND_BATCH]
            envelopes = await asyncio.to_thread(self._read, [item.seq for item in batch])
            await self._room()
            outcomes = await asyncio.gather(
                *(self._resend(item, envelopes.get(item.seq), plan.routed) for item in batch)
            )
            sent.extend(outcomes)
        return sent

    async def _resend(self, item: Planned, envelope: Envelope | None, routed: bool) -> Sent:
        if envelope is None:
            return Sent(item, None, "pruned from the journal before it was sent")
        broker = self._brokers[item.broker]
        event = restamp(envelope.event, time.time())
        try:
            new_seq = await self._resender_of(item.broker).resend(
                broker, event, envelope.headers, item.triggers, routed=routed
            )
        except (Problem, StoreError, Unstorable) as error:
            return Sent(item, None, str(error))
        return Sent(item, new_seq)

    async def redeliver(
        self, broker: BrokerRoute, event: WireEvent, destination: str
    ) -> tuple[int | None, tuple[str, ...]]:
        """Accept a dead letter's event again for the Trigger(s) that failed it alone: those
        `broker` routes it to whose subscriber is `destination` (`knativeerrordest`). Its new
        seq and those Triggers; Problem (404) when there are none, StoreError, Unstorable."""
        resender = self._resender_of(broker.key)
        stamped = restamp(event, time.time())
        urls = {trigger.key: trigger.subscriber_url for trigger in broker.triggers}
        chosen = tuple(
            key for key in resender.targets(broker, stamped) if urls.get(key) == destination
        )
        if not chosen:
            raise Problem(
                404,
                f"no trigger of broker {broker.key} that takes this event delivers to "
                f"{destination}: redeliver it through the broker instead (to=broker)",
                field="destination",
            )
        await self._room()
        seq = await resender.resend(broker, stamped, (), chosen, routed=False)
        return seq, chosen

    def _read(self, seqs: Sequence[int]) -> dict[int, Envelope]:
        marks = ",".join("?" * len(seqs))
        with _reading(self._database) as connection:
            rows = connection.execute(
                f"SELECT seq, {EVENT_COLUMNS} FROM events WHERE seq IN ({marks})", list(seqs)
            ).fetchall()
        return {int(row[0]): Envelope.from_row(row) for row in rows}


@contextmanager
def _reading(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the journal for one `with` block (WAL: beside the writer)."""
    connection = sqlite3.connect(database, timeout=5)
    try:
        yield connection
    finally:
        connection.close()


def _passes(matches: Predicate, attributes: Attributes) -> bool:
    """Whether the replay's filter takes the event; one that breaks on it does not."""
    try:
        return bool(matches(attributes))
    except Exception:
        log.exception("the replay's filter failed on an event; treated as no match")
        return False
