"""Reading the broker's journal (events, deliveries, attempts, local dead letters) from SQLite.

The broker serves these reads under `/_shop/`; the viewer and the CLI may open the database
file themselves (`Journal(path)`) while the broker runs: WAL lets readers and the writer work
side by side.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shop.broker.envelope import Envelope
from shop.broker.reading import reader
from shop.broker.store import EVENT_COLUMNS
from wire.http_binding import WireEvent, to_structured_document
from wire.spec import Attributes

MAX_LIMIT = 1000
# A page of events with their data stops once it carries this much data (an event may be 1 MiB).
MAX_PAGE_DATA_BYTES = 4 * 1024 * 1024

_EVENT_SUMMARY = (
    "SELECT seq, broker, event_id, type, source, arrival, attributes, parent_seq, parent_trigger"
    " FROM events"
)


class Journal:
    """Read-only questions about what the broker accepted and how each delivery went."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def events(self, after: int = 0, limit: int = 100, data: bool = False) -> list[dict[str, Any]]:
        """Accepted events with seq > `after`, oldest first, each with its deliveries' state.

        With `data`, each also carries `event`: the structured-mode JSON of the event as its
        subscribers get it (data included, hop counter removed); such a page stops early
        once it holds MAX_PAGE_DATA_BYTES of data.
        """
        with reader(self._database) as connection:
            rows = connection.execute(
                f"{_EVENT_SUMMARY} WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, _clamp(limit)),
            ).fetchall()
            if data:
                rows, outgoing = _with_outgoing(connection, rows)
            deliveries = _deliveries(connection, [row[0] for row in rows])
        events = [_summary(row, deliveries.get(row[0], [])) for row in rows]
        if data:
            for event in events:
                event["event"] = outgoing[event["seq"]]
        return events

    def history(self) -> dict[str, Any]:
        """Where the journal begins and ends, and what retention removed from it.

        `pruned_before_seq`: events with a smaller seq may have been pruned (none with an
        unfinished delivery was); None while nothing was. `last_seq` is the highest seq ever
        given, pruned or not.
        """
        with reader(self._database) as connection:
            oldest, newest = connection.execute("SELECT min(seq), max(seq) FROM events").fetchone()
            try:
                retention = connection.execute(
                    "SELECT age_seconds, max_bytes, pruned_before_seq, pruned_events"
                    " FROM retention WHERE id = 1"
                ).fetchone()
            except sqlite3.OperationalError:  # a store the broker has not upgraded yet
                retention = None
        age, max_bytes, pruned_before, pruned = retention or (None, None, 0, 0)
        return {
            "oldest_seq": oldest,
            "last_seq": max(newest or 0, pruned_before - 1) or None,
            "pruned_before_seq": pruned_before or None,
            "retention": {"age_seconds": age, "max_bytes": max_bytes, "pruned_events": pruned},
        }

    def event(self, seq: int) -> dict[str, Any] | None:
        """One event in full: attributes, data, headers, deliveries and every attempt."""
        with reader(self._database) as connection:
            row = connection.execute(
                "SELECT seq, broker, event_id, type, source, arrival, attributes, parent_seq,"
                " parent_trigger, data, headers FROM events WHERE seq = ?",
                (seq,),
            ).fetchone()
            if row is None:
                return None
            deliveries = _deliveries(connection, [seq]).get(seq, [])
            attempts = connection.execute(
                "SELECT trigger, attempt, target, url, started, duration_ms, status, outcome,"
                " error, reply_seq FROM attempts WHERE event_seq = ? ORDER BY seq",
                (seq,),
            ).fetchall()
        document = _summary(row[:9], deliveries)
        document.update(_data(row[9], document["attributes"]))
        document["headers"] = [list(pair) for pair in json.loads(row[10])] if row[10] else []
        document["attempts"] = [
            {
                "trigger": trigger,
                "attempt": attempt,
                "target": target,
                "url": url,
                "time": _iso(started),
                "duration_ms": duration_ms,
                "status": status,
                "outcome": outcome,
                "error": error,
                "reply_seq": reply_seq,
            }
            for (
                trigger,
                attempt,
                target,
                url,
                started,
                duration_ms,
                status,
                outcome,
                error,
                reply_seq,
            ) in attempts
        ]
        return document

    def dead_letters(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Events kept in the local dead-letter table (no sink took them), oldest first."""
        with reader(self._database) as connection:
            rows = connection.execute(
                "SELECT d.seq, d.event_seq, d.trigger, d.time, d.reason, d.error_destination,"
                " d.error_status, d.error_data, e.event_id, e.type, e.source"
                " FROM dead_letters d JOIN events e ON e.seq = d.event_seq"
                " WHERE d.seq > ? ORDER BY d.seq LIMIT ?",
                (after, _clamp(limit)),
            ).fetchall()
        return [
            {
                "seq": seq,
                "event_seq": event_seq,
                "trigger": trigger,
                "time": _iso(when),
                "reason": reason,
                "knativeerrordest": destination,
                "knativeerrorcode": status,
                "knativeerrordata": data,
                "id": event_id,
                "type": event_type,
                "source": source,
            }
            for (
                seq,
                event_seq,
                trigger,
                when,
                reason,
                destination,
                status,
                data,
                event_id,
                event_type,
                source,
            ) in rows
        ]


def _with_outgoing(
    connection: sqlite3.Connection, rows: list[Any]
) -> tuple[list[Any], dict[int, dict[str, Any]]]:
    """The rows that fit in one page with their data, and each one's event as delivered."""
    if not rows:
        return rows, {}
    marks = ",".join("?" * len(rows))
    found = {
        row[0]: Envelope.from_row(row)
        for row in connection.execute(
            f"SELECT seq, {EVENT_COLUMNS} FROM events WHERE seq IN ({marks})",
            [row[0] for row in rows],
        )
    }
    kept: list[Any] = []
    outgoing: dict[int, dict[str, Any]] = {}
    size = 0
    for row in rows:
        envelope = found.get(row[0])
        if envelope is None:  # pruned between the two reads
            continue
        size += len(envelope.event.data or b"")
        if kept and size > MAX_PAGE_DATA_BYTES:
            break
        kept.append(row)
        outgoing[row[0]] = to_structured_document(envelope.outgoing)
    return kept, outgoing


def _clamp(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def _deliveries(
    connection: sqlite3.Connection, seqs: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if not seqs:
        return found
    marks = ",".join("?" * len(seqs))
    for seq, trigger, state, attempts in connection.execute(
        f"SELECT event_seq, trigger, state, attempts FROM deliveries WHERE event_seq IN ({marks})"
        " ORDER BY trigger",
        list(seqs),
    ):
        found.setdefault(seq, []).append({"trigger": trigger, "state": state, "attempts": attempts})
    return found


def _summary(row: Sequence[Any], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    seq, broker, event_id, event_type, source, arrival, attributes, parent_seq, parent_trigger = row
    return {
        "seq": seq,
        "broker": broker,
        "id": event_id,
        "type": event_type,
        "source": source,
        "arrival": _iso(arrival),
        "attributes": json.loads(attributes),
        "reply_to": (
            None if parent_seq is None else {"seq": parent_seq, "trigger": parent_trigger}
        ),
        "deliveries": deliveries,
    }


def _data(data: bytes | None, attributes: Attributes) -> dict[str, Any]:
    """The event's data as the structured format carries it: JSON, text, or base64."""
    document = to_structured_document(WireEvent(attributes, data))
    return {key: document[key] for key in ("data", "data_base64") if key in document}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
