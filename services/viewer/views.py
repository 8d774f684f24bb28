"""The JSON the viewer's API and stream send for an event, a timeline and the buffer's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.viewer.history import Entry, HistoryStatus
from wire.http_binding import to_structured_document
from wire.spec import CONTEXT_ATTRIBUTES


def iso(epoch: float) -> str:
    """An epoch time as RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def entry_json(entry: Entry) -> dict[str, Any]:
    """One received event: the summary columns, attributes, extensions and decoded data."""
    event = entry.event
    document = to_structured_document(event)
    body: dict[str, Any] = {
        "seq": entry.seq,
        "received_at": iso(entry.received_at),
        "deliveries": entry.deliveries,
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.get("subject"),
        "time": event.get("time"),
        "attributes": {k: v for k, v in event.attributes.items() if k in CONTEXT_ATTRIBUTES},
        "extensions": {k: v for k, v in event.attributes.items() if k not in CONTEXT_ATTRIBUTES},
    }
    for key in ("data", "data_base64"):
        if key in document:
            body[key] = document[key]
    return body


def timeline_json(subject: str, entries: list[Entry]) -> dict[str, Any]:
    """Every event of one subject in the order they arrived, with the delays between them."""
    events = []
    first = entries[0].received_at if entries else 0.0
    previous = first
    for entry in entries:
        item = entry_json(entry)
        item["offset_ms"] = round((entry.received_at - first) * 1000, 1)
        item["delay_ms"] = round((entry.received_at - previous) * 1000, 1)
        previous = entry.received_at
        events.append(item)
    duration = (entries[-1].received_at - first) * 1000 if entries else 0.0
    return {"subject": subject, "events": events, "duration_ms": round(duration, 1)}


def status_json(status: HistoryStatus) -> dict[str, Any]:
    """The buffer's capacity, fill, the number of old events it dropped, and what it was
    filled with at start (`restored`: None when it was not filled from a journal)."""
    restored = status.restored
    return {
        "capacity": status.capacity,
        "size": status.size,
        "dropped": status.dropped,
        "first_seq": status.first_seq,
        "last_seq": status.last_seq,
        "restored": None
        if restored is None
        else {
            "journal": restored.journal,
            "events": restored.events,
            "pruned_before_seq": restored.pruned_before_seq,
            "retention": restored.retention,
            "error": restored.error,
        },
    }
