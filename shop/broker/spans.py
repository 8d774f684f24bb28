"""Spans as the broker keeps them: the model, its `spans` table, and a trace read back as JSON.

Two kinds of span share the table: the broker's own (`shop.broker.tracing`: an event received,
each delivery attempt), which carry the seq of their event and are pruned with it, and those the
services export over OTLP (`shop.broker.otlp`), which carry none and are pruned by age
(`shop.broker.retention`). A trace is answered as `GET /_shop/traces/<trace_id>` gives it
(docs/observability.md, "Traces under shop up").
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from shop.broker.reading import reader

AttributeValue = str | int | float | bool
Kind = Literal["server", "client", "producer", "consumer", "internal"]
Status = Literal["ok", "error", "unset"]

KINDS: tuple[Kind, ...] = ("server", "client", "producer", "consumer", "internal")
STATUSES: tuple[Status, ...] = ("ok", "error", "unset")
TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")
#: A trace's answer holds at most this many spans (the oldest by start).
MAX_TRACE_SPANS = 10_000

# The spans found by their trace id through the index: all but the broker's attempt spans
# under a parent, which are found through their event's receive span (the same trace). An
# entry in a random-keyed index costs the writer most of a row's time, and an event has one
# receive span but an attempt span per attempt per Trigger.
INDEXED = "kind != 'client' OR event_seq IS NULL OR parent_span_id IS NULL"
# Run at every start (every statement is IF NOT EXISTS), apart from the store's schema version.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS spans (
    seq INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_unix_nano INTEGER NOT NULL,
    end_unix_nano INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    attributes TEXT NOT NULL,
    event_seq INTEGER,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id) WHERE {INDEXED};
CREATE INDEX IF NOT EXISTS spans_by_event ON spans (event_seq);
"""
INSERT = (
    "INSERT INTO spans (trace_id, span_id, parent_span_id, name, service, kind, start_unix_nano,"
    " end_unix_nano, status, status_message, attributes, event_seq, received) VALUES "
)
_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, service, kind, start_unix_nano, end_unix_nano,"
    " status, status_message, attributes, event_seq, seq"
)
_INDEXED = f"SELECT {_COLUMNS} FROM spans WHERE trace_id = ? AND ({INDEXED}) LIMIT ?"
_OF_EVENTS = (
    f"SELECT {_COLUMNS} FROM spans WHERE event_seq IN (SELECT value FROM json_each(?))"
    f" AND trace_id = ? AND NOT ({INDEXED}) LIMIT ?"
)


class Span(NamedTuple):
    """One finished span, as the contract's JSON names its members."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: Kind
    start_unix_nano: int
    end_unix_nano: int
    status: Status
    status_message: str | None
    attributes: Mapping[str, AttributeValue]

    def row(self, received: float, event_seq: int | None = None) -> tuple[object, ...]:
        """The `spans` row (without seq), stored at `received` (epoch seconds)."""
        return (
            *self[:10],
            json.dumps(self.attributes, separators=(",", ":"), ensure_ascii=False),
            event_seq,
            received,
        )

    def to_json(self) -> dict[str, Any]:
        """The span as `GET /_shop/traces/<trace_id>` answers it."""
        return {**self._asdict(), "attributes": dict(self.attributes)}


def create_table(connection: sqlite3.Connection) -> None:
    """The `spans` table and its indexes, if the store lacks them."""
    connection.executescript(SCHEMA)


class TraceReader:
    """Reads traces from the store's database file (another connection than the writer's)."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def trace(self, trace_id: str) -> list[Span]:
        """Every stored span of `trace_id`, by start (at most MAX_TRACE_SPANS)."""
        with reader(self._database) as connection:
            try:
                rows = connection.execute(_INDEXED, (trace_id, MAX_TRACE_SPANS)).fetchall()
                events = sorted({row[11] for row in rows if row[11] is not None})
                if events:
                    rows += connection.execute(
                        _OF_EVENTS, (json.dumps(events), trace_id, MAX_TRACE_SPANS)
                    ).fetchall()
            except sqlite3.OperationalError:  # a store the broker has not opened since
                return []
        rows.sort(key=lambda row: (row[6], row[12]))  # by start, then as stored
        return [_span(row[:11]) for row in rows[:MAX_TRACE_SPANS]]


def _span(row: tuple[Any, ...]) -> Span:
    trace_id, span_id, parent, name, service, kind, start, end, status, message, attributes = row
    return Span(
        trace_id,
        span_id,
        parent,
        name,
        service,
        kind,
        start,
        end,
        status,
        message,
        json.loads(attributes),
    )
