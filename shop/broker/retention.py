"""Retention: pruning finished events from the store in small steps, between the writer's commits.

The rule, in one place (`Pruner.step`): an event whose every delivery is final (delivered,
dead-lettered to a sink, or kept in the local dead-letter table), or that matched no trigger,
is pruned with its delivery rows, attempts, local dead letters and the broker's spans of it once
it is older than the retention age, or, oldest first, while the store's live data exceeds the
retention size. Spans (the broker's and those the services exported over OTLP) are pruned once
they are older than the retention age, and, oldest first, before any event, while the store is
over its size: they are the journal's commentary, the events its matter. An
event with a delivery still pending (or on its way to the dead-letter sink), or that RabbitMQ
still holds for a trigger of a RabbitMQBroker (`queued`), is never pruned, whatever its age.

Pruning runs on the writer's own connection and thread, in steps of at most BATCH_EVENTS events
(a few milliseconds), at most every INTERVAL_SECONDS, and back to back only while it catches
up, then at most DUTY of the writer's time: accepted events wait for at most one step, and
SQLite never sees two writers. Freed pages go back to the file system by `incremental_vacuum`,
a few at a time, so the file shrinks with what it holds.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from shop.broker.config import retention_text
from shop.broker.store import AUTO_VACUUM_INCREMENTAL, State

log = logging.getLogger(__name__)

BATCH_EVENTS = 200  # events pruned by one step at most
BATCH_SPANS = 1000  # spans pruned by one step at most
SCAN_ROWS = 2000  # events one step looks at, at most (unfinished ones are passed over)
INTERVAL_SECONDS = 1.0  # between steps when there is nothing to catch up
DUTY = 0.2  # the share of the writer's time steps may take while catching up
VACUUM_MIN_PAGES = 64  # free pages before they are given back to the file system
VACUUM_STEP_PAGES = 256  # pages given back by one step at most (1 MiB at 4 KiB pages)
LOG_SECONDS = 60.0  # one summary log line at most this often

# Each candidate with whether it is unfinished and roughly the bytes it holds (its own row; its
# deliveries and attempts add about a hundred bytes per trigger).
_CANDIDATES = (
    "SELECT e.seq, e.arrival, EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq"
    " AND d.state IN (?, ?, ?)), length(e.attributes) + coalesce(length(e.data), 0)"
    " + coalesce(length(e.headers), 0) FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?"
)
_UNFINISHED = (State.PENDING.value, State.DEAD_LETTERING.value, State.QUEUED.value)


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one step did."""

    by_age: int = 0
    by_size: int = 0
    vacuumed_pages: int = 0
    seconds: float = 0.0
    live_bytes: int = 0
    more: bool = False  # work is left: the next step comes soon

    @property
    def pruned(self) -> int:
        return self.by_age + self.by_size


def store_files(database: Path) -> tuple[Path, ...]:
    """The files the store occupies: the database, its WAL and the WAL's index."""
    return (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    )


def store_bytes(database: Path) -> int:
    """Bytes the store occupies on disk now (the database, WAL and shared-memory files)."""
    total = 0
    for path in store_files(database):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


class Pruner:
    """Steps of the retention rule on the writer's connection; the writer calls `step` when due.

    A sweep walks the events in seq order from the oldest, a window at a time, passing over
    those with unfinished deliveries; it ends at the first event too young to prune by age
    while the store is within its size, or at the newest event. The next sweep starts again
    from the oldest, so an event whose last delivery finished since is pruned then.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        age_seconds: float,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        self._age = age_seconds
        self._max_bytes = max_bytes
        self._clock = clock
        self._cursor = 0
        self._due = time.monotonic()
        self._page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
        self._vacuum = (
            connection.execute("PRAGMA auto_vacuum").fetchone()[0] == AUTO_VACUUM_INCREMENTAL
        )
        self._logged_at = time.monotonic()
        self._since_log = [0, 0]
        self._warned_at = 0.0
        connection.execute(
            "INSERT INTO retention (id, age_seconds, max_bytes) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET age_seconds = excluded.age_seconds,"
            " max_bytes = excluded.max_bytes",
            (age_seconds, max_bytes),
        )
        log.info("retention: events pruned after %s", retention_text(age_seconds, max_bytes))

    def seconds_until_due(self) -> float:
        """How long the writer may wait for work before the next step is due."""
        return max(0.0, self._due - time.monotonic())

    def step(self) -> PruneStep:
        """Prune one batch and give back some free pages; schedule the next step."""
        started = time.perf_counter()
        self._due = time.monotonic() + INTERVAL_SECONDS  # also if this step fails
        excess = self._live_bytes() - self._max_bytes
        spans_left = self._prune_spans(over_size=excess > 0)
        if excess > 0:  # what the spans gave back may be enough
            excess = self._live_bytes() - self._max_bytes
        by_age, by_size, swept = self._choose(excess)
        chosen = by_age + by_size
        if chosen:
            self._delete(chosen)
        vacuumed, free_left = self._give_back_pages()
        live = self._live_bytes()
        if excess > 0 and swept and not chosen:
            self._warn_stuck(live)
        if swept:
            self._cursor = 0
        more = (
            not swept
            or len(chosen) >= BATCH_EVENTS
            or free_left >= VACUUM_MIN_PAGES
            or (live > self._max_bytes and bool(chosen))
            or spans_left
        )
        seconds = time.perf_counter() - started
        pause = seconds * (1 - DUTY) / DUTY if more else INTERVAL_SECONDS
        self._due = time.monotonic() + pause
        result = PruneStep(len(by_age), len(by_size), vacuumed, seconds, live, more)
        self._summarise(result)
        return result

    def _choose(self, excess: int) -> tuple[list[int], list[int], bool]:
        """The seqs to prune (by age; by size, about `excess` bytes' worth), and whether this
        step ended the sweep."""
        cutoff = self._clock() - self._age
        # Read lazily: a step usually stops at the first rows, and SQLite computes no more.
        cursor = self._connection.execute(_CANDIDATES, (*_UNFINISHED, self._cursor, SCAN_ROWS))
        try:
            return self._pick(cursor, cutoff, excess)
        finally:
            cursor.close()

    def _pick(
        self, rows: Iterable[tuple[int, float, int, int]], cutoff: float, excess: int
    ) -> tuple[list[int], list[int], bool]:
        by_age: list[int] = []
        by_size: list[int] = []
        seen = 0
        for seq, arrival, unfinished, size in rows:
            seen += 1
            old = arrival < cutoff
            if not old and excess <= 0:
                return by_age, by_size, True
            self._cursor = seq
            if unfinished:
                continue
            if old:
                by_age.append(seq)
            else:
                by_size.append(seq)
            excess -= size
            if len(by_age) + len(by_size) >= BATCH_EVENTS:
                return by_age, by_size, False
        return by_age, by_size, seen < SCAN_ROWS

    def _delete(self, seqs: list[int]) -> None:
        marks = ",".join("?" * len(seqs))
        connection = self._connection
        try:
            connection.execute("BEGIN")
            for table, column in (
                ("spans", "event_seq"),
                ("attempts", "event_seq"),
                ("deliveries", "event_seq"),
                ("dead_letters", "event_seq"),
                ("events", "seq"),
            ):
                connection.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", seqs)
            connection.execute(
                "UPDATE retention SET pruned_before_seq = max(pruned_before_seq, ?),"
                " pruned_events = pruned_events + ?, pruned_at = ? WHERE id = 1",
                (max(seqs) + 1, len(seqs), self._clock()),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _prune_spans(self, *, over_size: bool) -> bool:
        """Prune the oldest spans older than the retention age, or, while the store is over its
        size, whatever their age; whether a full batch went (more may be due). The broker's
        spans of an event also go with it (`_delete`); this takes the services' spans, and
        those of the broker that were written after their event was pruned."""
        connection = self._connection
        cutoff = self._clock() - self._age
        chosen: list[int] = []
        # Read lazily: with nothing to prune the first row ends it.
        cursor = connection.execute(
            "SELECT seq, received FROM spans ORDER BY seq LIMIT ?", (BATCH_SPANS,)
        )
        try:
            for seq, received in cursor:  # in the order they were stored, so oldest first
                if received >= cutoff and not over_size:
                    break
                chosen.append(seq)
        finally:
            cursor.close()
        if chosen:
            connection.execute(
                f"DELETE FROM spans WHERE seq IN ({','.join('?' * len(chosen))})", chosen
            )
        return len(chosen) >= BATCH_SPANS

    def _give_back_pages(self) -> tuple[int, int]:
        """Return up to VACUUM_STEP_PAGES free pages to the file system; (given, still free)."""
        if not self._vacuum:
            return 0, 0
        free = self._free_pages()
        if free < VACUUM_MIN_PAGES:
            return 0, free
        pages = min(free, VACUUM_STEP_PAGES)
        # executescript steps the pragma to its end; execute() would give back one page.
        self._connection.executescript(f"PRAGMA incremental_vacuum({pages})")
        return pages, self._free_pages()

    def _free_pages(self) -> int:
        return int(self._connection.execute("PRAGMA freelist_count").fetchone()[0])

    def _live_bytes(self) -> int:
        """Bytes of the database's pages that hold data (free pages not counted)."""
        pages = int(self._connection.execute("PRAGMA page_count").fetchone()[0])
        return (pages - self._free_pages()) * self._page_size

    def _warn_stuck(self, live: int) -> None:
        now = time.monotonic()
        if now - self._warned_at < LOG_SECONDS:
            return
        self._warned_at = now
        log.warning(
            "the broker store holds %d MiB, over its retention size of %d MiB, and every "
            "event left has an unfinished delivery: nothing can be pruned until they finish",
            live // 2**20,
            self._max_bytes // 2**20,
        )

    def _summarise(self, step: PruneStep) -> None:
        self._since_log[0] += step.by_age
        self._since_log[1] += step.by_size
        now = time.monotonic()
        if now - self._logged_at < LOG_SECONDS or not any(self._since_log):
            return
        by_age, by_size = self._since_log
        log.info(
            "pruned %d events (%d older than the retention age, %d beyond its size) in %.0f s;"
            " the store holds %d MiB",
            by_age + by_size,
            by_age,
            by_size,
            now - self._logged_at,
            step.live_bytes // 2**20,
        )
        self._since_log = [0, 0]
        self._logged_at = now
