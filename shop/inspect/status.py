"""What `shop status` reports, wherever it was gathered (a cluster or `shop up`), and its text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop.inspect.render import table


@dataclass(frozen=True)
class Readiness:
    """A Ready condition: True, False or None (unknown), and why when it is not True."""

    ready: bool | None
    reason: str | None = None
    message: str | None = None

    @classmethod
    def from_conditions(cls, status: Mapping[str, Any] | None) -> Readiness:
        """Knative's `status.conditions[type=Ready]`."""
        if not status:
            return cls(None, "NoStatus", "the controller has not reported on it yet")
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Ready":
                value = condition.get("status")
                ready = True if value == "True" else False if value == "False" else None
                return cls(ready, condition.get("reason"), condition.get("message"))
        return cls(None, "NoReadyCondition", "status has no Ready condition")

    @property
    def word(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.ready]

    @property
    def why(self) -> str | None:
        if self.ready is True:
            return None
        parts = [part for part in (self.reason, self.message) if part]
        return ": ".join(parts) or None


@dataclass(frozen=True)
class BrokerStatus:
    name: str
    address: str | None
    readiness: Readiness
    broker_class: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str | None
    readiness: Readiness
    # Where the broker delivers to it (status.address.url): what knativeerrordest names.
    address: str | None = None


@dataclass(frozen=True)
class TriggerStatus:
    name: str
    filter: str
    subscriber: str
    readiness: Readiness
    # A RabbitMQBroker's Trigger: the messages ready in its queue (shop up's broker, /metrics).
    queued: int | None = None


@dataclass(frozen=True)
class EventTypeStatus:
    type: str
    source: str | None
    broker: str | None
    readiness: Readiness


@dataclass(frozen=True)
class DeadLetterCounts:
    """How many dead letters the deadletter service keeps, by failed URL; or why unknown."""

    total: int | None
    pending: int | None = None
    by_destination: Mapping[str, int] = field(default_factory=dict)
    unknown_because: str | None = None
    # Events the local broker keeps itself (triggers without a dead-letter sink).
    held_by_broker: int = 0


@dataclass(frozen=True)
class StatusReport:
    """Everything `shop status` prints."""

    where: str
    brokers: Sequence[BrokerStatus]
    services: Sequence[ServiceStatus]
    triggers: Sequence[TriggerStatus]
    event_types: Sequence[EventTypeStatus]
    dead_letters: DeadLetterCounts
    notes: Sequence[str] = ()

    @property
    def all_ready(self) -> bool:
        things: list[Readiness] = [
            *(item.readiness for item in self.brokers),
            *(item.readiness for item in self.services),
            *(item.readiness for item in self.triggers),
        ]
        return bool(self.brokers) and all(item.ready is True for item in things)


def render(report: StatusReport) -> str:
    """The report as sections of tables."""
    out = [f"shop status: {report.where}", ""]
    out += _section(
        "BROKER",
        ("NAME", "CLASS", "ADDRESS", "READY", "REASON"),
        [
            (b.name, b.broker_class, b.address, b.readiness.word, b.readiness.why)
            for b in report.brokers
        ],
    )
    out += _section(
        "SERVICES",
        ("NAME", "URL", "READY", "DEAD LETTERS", "REASON"),
        [
            (
                s.name,
                s.url,
                s.readiness.word,
                _count_for(s, report.dead_letters),
                s.readiness.why,
            )
            for s in report.services
        ],
    )
    out += _triggers(report.triggers)
    out += _section(
        "EVENT TYPES",
        ("TYPE", "SOURCE", "BROKER", "READY", "REASON"),
        [
            (e.type, e.source, e.broker, e.readiness.word, e.readiness.why)
            for e in report.event_types
        ],
    )
    out.append("DEAD LETTERS")
    out.append(f"  {_dead_letter_line(report.dead_letters)}")
    for note in report.notes:
        out.append(f"note: {note}")
    out.append("")
    out.append("everything is ready" if report.all_ready else "NOT everything is ready")
    return "\n".join(out) + "\n"


def _triggers(triggers: Sequence[TriggerStatus]) -> list[str]:
    """The TRIGGERS section; with a QUEUED column when some Trigger's queue depth is known."""
    if not any(t.queued is not None for t in triggers):
        return _section(
            "TRIGGERS",
            ("NAME", "FILTER", "SUBSCRIBER", "READY", "REASON"),
            [(t.name, t.filter, t.subscriber, t.readiness.word, t.readiness.why) for t in triggers],
        )
    return _section(
        "TRIGGERS",
        ("NAME", "FILTER", "SUBSCRIBER", "QUEUED", "READY", "REASON"),
        [
            (
                t.name,
                t.filter,
                t.subscriber,
                "-" if t.queued is None else t.queued,
                t.readiness.word,
                t.readiness.why,
            )
            for t in triggers
        ],
    )


def _section(title: str, headers: Sequence[str], rows: list[Sequence[object]]) -> list[str]:
    if not rows:
        return [title, "  (none)", ""]
    return [title, *("  " + line for line in table(headers, rows).splitlines()), ""]


def _count_for(service: ServiceStatus, dead_letters: DeadLetterCounts) -> int | str:
    """Dead letters of events whose delivery to this service failed (by knativeerrordest)."""
    if dead_letters.total is None:
        return "?"
    found = 0
    for url in {url.rstrip("/") for url in (service.address, service.url) if url}:
        found += dead_letters.by_destination.get(url, 0)
    return found


def _dead_letter_line(counts: DeadLetterCounts) -> str:
    if counts.total is None:
        line = f"unknown: {counts.unknown_because}"
    else:
        line = f"{counts.total} stored, {counts.pending} not redelivered"
    if counts.held_by_broker:
        line += f"; {counts.held_by_broker} kept by the local broker (no dead-letter sink)"
    return line


def counts_from_summary(summary: Mapping[str, Any], held_by_broker: int = 0) -> DeadLetterCounts:
    """The deadletter service's `GET /deadletters/summary` as counts by failed URL."""
    by_destination = {
        str(entry["destination"] or "").rstrip("/"): int(entry["total"])
        for entry in summary.get("by_destination", [])
    }
    return DeadLetterCounts(
        total=int(summary["total"]),
        pending=int(summary["pending"]),
        by_destination=by_destination,
        held_by_broker=held_by_broker,
    )
