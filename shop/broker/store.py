"""The broker's SQLite store: schema, the one group-committing writer thread, crash recovery.

Every write goes through one thread that drains a queue and commits whatever it found in one
transaction (group commit): under load many ingress requests share one commit, and each 202 is
released only after the commit that holds its event. The event loop never waits on SQLite.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from shop.broker.config import Synchronous
from shop.broker.envelope import Envelope
from shop.broker.spans import INSERT as _SPANS
from shop.broker.spans import create_table as create_spans_table

if TYPE_CHECKING:
    from shop.broker.retention import Pruner, PruneStep

log = logging.getLogger(__name__)

# 2: the `retention` row and `dead_letters_by_event` (pruning); databases at 1 are upgraded.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    broker TEXT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    arrival REAL NOT NULL,
    attributes TEXT NOT NULL,
    data BLOB,
    headers TEXT,
    parent_seq INTEGER,
    parent_trigger TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    error_destination TEXT,
    error_status INTEGER,
    error_data BLOB,
    PRIMARY KEY (event_seq, trigger)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    started REAL NOT NULL,
    duration_ms REAL NOT NULL,
    status INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    reply_seq INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_by_event ON attempts (event_seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT NOT NULL,
    error_destination TEXT,
    error_status INTEGER,
    error_data TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_by_event ON dead_letters (event_seq);
CREATE TABLE IF NOT EXISTS retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    age_seconds REAL NOT NULL,
    max_bytes INTEGER NOT NULL,
    pruned_before_seq INTEGER NOT NULL DEFAULT 0,
    pruned_events INTEGER NOT NULL DEFAULT 0,
    pruned_at REAL
);
"""

EVENT_COLUMNS = (
    "broker, event_id, type, source, arrival, attributes, data, headers, parent_seq, parent_trigger"
)
_EVENTS = f"INSERT INTO events (seq, {EVENT_COLUMNS}) VALUES "
_DELIVERIES = (
    "INSERT OR REPLACE INTO deliveries (event_seq, trigger, state, attempts, next_at,"
    " error_destination, error_status, error_data) VALUES "
)
_ATTEMPTS = (
    "INSERT INTO attempts (event_seq, trigger, attempt, target, url, started, duration_ms,"
    " status, outcome, error, reply_seq) VALUES "
)
_DEAD_LETTERS = (
    "INSERT INTO dead_letters (event_seq, trigger, time, reason, error_destination,"
    " error_status, error_data) VALUES "
)
# Rows go in as multi-row INSERTs of these sizes, so the SQL strings repeat (the sqlite3
# module caches their prepared statements) and a batch takes few statements. 64 rows of 13
# columns (spans) stay under the 999 variables of older SQLite builds.
_CHUNKS = (64, 32, 16, 8, 4, 2, 1)
# How long outcome records wait before another try when the store could not take them.
RETRY_SECONDS = 0.5


class StoreError(RuntimeError):
    """The store could not commit; accepted requests waiting on it must not get their 202."""


class Unstorable(ValueError):
    """One event the store cannot take (its other writes went in): refused, not retried."""


class State(StrEnum):
    """Where a delivery stands, as the `deliveries.state` column and the journal say it.

    Rows carry the plain `str` of a member: sqlite3 binds a `str` subclass only after a search
    for an adapter, which costs more than the rest of the binding.
    """

    PENDING = "pending"  # to the subscriber, retries included
    DEAD_LETTERING = "dead_lettering"  # to the dead-letter sink, retries included
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    KEPT = "kept"  # in the local dead-letter table
    DROPPED = "dropped"  # a RabbitMQBroker gave it up: no dead-letter sink took it
    # A RabbitMQBroker's, until its outcome: RabbitMQ holds the event (in the trigger's queue,
    # with its dispatcher, in a dead-letter queue). Neither the store's dispatcher nor a
    # restart's recovery takes it up; retention keeps the event.
    QUEUED = "queued"


class DeliveryState(NamedTuple):
    """A row of `deliveries` after an outcome: where one trigger's delivery of one event stands.

    A NamedTuple rather than a frozen dataclass: one is built per outcome, and a frozen
    dataclass's `__init__` costs several times as much.
    """

    event_seq: int
    trigger: str
    state: State
    attempts: int
    next_at: float | None = None
    error_destination: str | None = None
    error_status: int | None = None
    error_data: bytes | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeliveryState:
        """A delivery's state read back from its `deliveries` row."""
        event_seq, trigger, state, *rest = row
        return cls(event_seq, trigger, State(state), *rest)

    def row(self) -> tuple[object, ...]:
        """The `deliveries` row, columns in table order."""
        return (
            self.event_seq,
            self.trigger,
            str(self.state),
            self.attempts,
            self.next_at,
            self.error_destination,
            self.error_status,
            self.error_data,
        )


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery found unfinished at start-up."""

    envelope: Envelope
    state: DeliveryState


Accepted = tuple[Envelope, tuple[str, ...]]


@dataclass(slots=True)
class _Accept:
    """Queued for the writer: an accepted event, its pending deliveries, and who waits on them."""

    envelope: Envelope
    row: tuple[object, ...]
    triggers: tuple[str, ...]
    future: asyncio.Future[Envelope]
    #: Triggers whose deliveries another data plane makes (rows `queued`, nothing started).
    queued: tuple[str, ...] = ()


@dataclass(slots=True)
class _Record:
    """Queued for the writer: the rows of one delivery outcome; nobody waits on them."""

    attempt: tuple[object, ...] | None
    delivery: tuple[object, ...] | None
    dead_letter: tuple[object, ...] | None
    spans: Sequence[tuple[object, ...]] = ()


_Write = _Accept | _Record
_STOP = object()


# The WAL file is cut back to this size whenever it starts over after a checkpoint; without a
# limit it stays as large as it ever grew.
WAL_SIZE_LIMIT = 16 * 1024 * 1024
# A WAL that holds more than this after a passive checkpoint is started over (Checkpointer).
RESTART_WAL_BYTES = 4 * 1024 * 1024
RESTART_WAIT_MS = 250
# A database made before auto_vacuum (schema 1) is rewritten once at start-up (VACUUM) when it
# is this small, which takes a second or two; a larger one keeps reusing its free pages (its
# file stays as large as it is), and the log says how to convert it by hand.
CONVERT_AT_START_BYTES = 64 * 1024 * 1024


def connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """A connection to the broker database in WAL mode, the schema in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        # Only takes effect before the first table: pruned pages can then be given back to
        # the file system (`incremental_vacuum`) instead of only being reused.
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    # Under WAL, NORMAL survives a crash of the process but may lose the last commits on a
    # power loss; FULL syncs the WAL at every commit (one fsync per group commit).
    connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
    connection.execute("PRAGMA busy_timeout=5000")
    # Checkpoints run in their own thread (Checkpointer), not inside the writer's commits,
    # where they would hold every waiting 202 for the time it takes to copy the WAL.
    connection.execute("PRAGMA wal_autocheckpoint=0")
    if version < SCHEMA_VERSION:
        # Every statement of SCHEMA is IF NOT EXISTS: running it again adds what is new.
        connection.executescript(SCHEMA)
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    create_spans_table(connection)
    if connection.execute("PRAGMA auto_vacuum").fetchone()[0] != AUTO_VACUUM_INCREMENTAL:
        _convert_to_incremental_vacuum(connection, path)
    return connection


AUTO_VACUUM_INCREMENTAL = 2


def _convert_to_incremental_vacuum(connection: sqlite3.Connection, path: Path) -> None:
    """Give a database made before auto_vacuum the setting, by VACUUM, if that is quick."""
    size = path.stat().st_size
    if size > CONVERT_AT_START_BYTES:
        log.warning(
            "the broker store %s (%d MiB) was made without auto_vacuum: pruned space is reused "
            "but the file will not shrink; to convert it, stop the broker and run "
            "`sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'`",
            path,
            size // 2**20,
            path,
        )
        return
    started = time.monotonic()
    connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    connection.execute("VACUUM")
    log.info(
        "converted the broker store %s to auto_vacuum=INCREMENTAL (VACUUM of %d KiB in %.2f s)",
        path,
        size // 1024,
        time.monotonic() - started,
    )


class Checkpointer:
    """Copies the WAL into the database file every `interval` seconds, beside the writer.

    A PASSIVE checkpoint never waits for the writer, but under a steady load it never catches
    up either: the writer appends while it copies, and SQLite starts the WAL over only once
    every frame in it was copied. So when a pass leaves more than RESTART_WAL_BYTES in the WAL,
    a RESTART checkpoint follows at once: it holds the writer back while it copies what the
    pass left (the frames of those few milliseconds), and the next commit starts the WAL
    over, cut back to WAL_SIZE_LIMIT. Without it the WAL grows by every commit for ever.
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self._path = path
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # How long a RESTART may wait for the writer's commit and for readers (then it gives
        # up until the next interval).
        connection.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
        try:
            while not self._stopping.wait(self._interval):
                frames = self._checkpoint(connection, "PASSIVE")
                if frames * page_size > RESTART_WAL_BYTES:
                    self._checkpoint(connection, "RESTART")
            self._checkpoint(connection, "TRUNCATE")
        finally:
            connection.close()

    @staticmethod
    def _checkpoint(connection: sqlite3.Connection, mode: str) -> int:
        """Run one checkpoint; the frames the WAL holds (0 if it failed)."""
        try:
            _, frames, _ = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            log.exception("checkpointing the broker store failed; will try again")
            return 0
        return max(int(frames), 0)


def load_pending(connection: sqlite3.Connection) -> list[PendingDelivery]:
    """Every delivery that was accepted and not finished, oldest event first."""
    rows = connection.execute(
        f"SELECT d.event_seq, d.trigger, d.state, d.attempts, d.next_at, d.error_destination,"
        f" d.error_status, d.error_data, e.seq, {_prefixed(EVENT_COLUMNS, 'e.')}"
        " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
        " WHERE d.state IN (?, ?) ORDER BY d.event_seq",
        (State.PENDING, State.DEAD_LETTERING),
    ).fetchall()
    envelopes: dict[int, Envelope] = {}
    pending = []
    for row in rows:
        seq = int(row[0])
        envelope = envelopes.get(seq)
        if envelope is None:
            envelope = envelopes[seq] = Envelope.from_row(row[8:])
        pending.append(PendingDelivery(envelope, DeliveryState.from_row(row[:8])))
    return pending


def last_seq(connection: sqlite3.Connection) -> int:
    """The highest seq ever given: of the newest event, or of the newest pruned one."""
    row = connection.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM events), 0),"
        " coalesce((SELECT pruned_before_seq - 1 FROM retention WHERE id = 1), 0))"
    ).fetchone()
    return int(row[0])


def _prefixed(columns: str, prefix: str) -> str:
    return ", ".join(prefix + name.strip() for name in columns.split(","))


class Writer:
    """The single writer: a thread that group-commits accepted events and delivery outcomes.

    `accept` is called on the event loop and returns a future that resolves once the event and
    its pending deliveries are committed; `on_committed` then runs on the loop with the newly
    committed events. Outcome records are written in the same batches but nobody waits on
    them: losing one in a crash only means a redelivery (at least once).

    One batch is with the thread at a time; what arrives meanwhile gathers on the loop and goes
    as the next batch once the commit is done. Batches so grow with the commit's latency, and
    the thread is woken once per commit, not once per event.

    With a `pruner`, the thread runs its steps when they are due, while it waits for work or
    between two batches; `on_pruned` then runs on the loop with what each step did.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        on_committed: Callable[[list[Accepted]], None],
        pruner: Pruner | None = None,
        on_pruned: Callable[[PruneStep], None] | None = None,
    ) -> None:
        self._connection = connection
        self._loop = loop
        self._on_committed = on_committed
        self._pruner = pruner
        self._on_pruned = on_pruned
        self._queue: queue.SimpleQueue[list[_Write] | object] = queue.SimpleQueue()
        self._gathered: list[_Write] = []
        self._scheduled = False
        self._in_flight = False
        #: Accepted events queued or being committed, whose producers wait for their answer.
        self.waiting = 0
        #: Called whenever `waiting` changes (backpressure).
        self.on_load: Callable[[], None] | None = None
        self._next_seq = last_seq(connection) + 1
        self._thread = threading.Thread(target=self._run, name="broker-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the thread."""
        if self._gathered:
            self._queue.put(self._gathered)
            self._gathered = []
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def accept(
        self, envelope: Envelope, triggers: tuple[str, ...], queued: tuple[str, ...] = ()
    ) -> asyncio.Future[Envelope]:
        """Queue an accepted event and its pending deliveries; the future resolves after commit.

        `queued`: triggers whose deliveries RabbitMQ holds; their rows are `queued`, and
        `on_committed` does not hear of them."""
        future: asyncio.Future[Envelope] = self._loop.create_future()
        # The row is built here, on the loop, so the writer thread needs the GIL for little, and
        # checked, so that what SQLite cannot take is refused before it joins a batch.
        try:
            row = envelope.row()
            for value in row:
                if isinstance(value, str):
                    value.encode("utf-8")
        except (ValueError, TypeError) as error:
            raise Unstorable(f"the broker cannot store this event: {error}") from None
        self._put(_Accept(envelope, row, triggers, future, queued))
        self.waiting += 1
        if self.on_load is not None:
            self.on_load()
        return future

    def record(
        self,
        *,
        attempt: tuple[object, ...] | None = None,
        delivery: DeliveryState | None = None,
        dead_letter: tuple[object, ...] | None = None,
        spans: Sequence[tuple[object, ...]] = (),
    ) -> None:
        """Queue outcome rows (an attempt, a delivery's new state, a local dead letter) or a
        batch of `spans` rows."""
        self._put(
            _Record(attempt, None if delivery is None else delivery.row(), dead_letter, spans)
        )

    def _put(self, item: _Write) -> None:
        self._gathered.append(item)
        if not self._scheduled and not self._in_flight:
            # Hand over at the end of this turn of the loop, with whatever else it gathers.
            self._scheduled = True
            self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._scheduled = False
        if self._gathered and not self._in_flight:
            self._in_flight = True
            self._queue.put(self._gathered)
            self._gathered = []

    def _run(self) -> None:
        pruner = self._pruner
        while True:
            try:
                batch = self._queue.get(
                    timeout=None if pruner is None else pruner.seconds_until_due()
                )
            except queue.Empty:
                self._prune()
                continue
            if batch is _STOP:
                return
            assert isinstance(batch, list)
            self._write(batch)
            if pruner is not None and pruner.seconds_until_due() == 0:
                self._prune()

    def _prune(self) -> None:
        assert self._pruner is not None
        try:
            step = self._pruner.step()
        except sqlite3.Error:
            log.exception("pruning the broker store failed; will try again")
            return
        if self._on_pruned is not None:
            self._loop.call_soon_threadsafe(self._on_pruned, step)

    def _write(self, batch: Sequence[_Write]) -> None:
        """Commit a batch at once; if that fails, each write alone, so one cannot fail another."""
        seq = self._next_seq
        writes: list[_Rows] = []
        for item in batch:
            rows = _Rows.of(item, seq)
            seq += rows.accepted is not None
            writes.append(rows)
        try:
            self._commit(writes, with_spans=False)
        except Exception:
            log.warning("a group commit of %d writes failed; writing each alone", len(writes))
            self._write_each(writes)
            return
        self._next_seq = seq
        self._loop.call_soon_threadsafe(self._done, writes, ())
        self._commit_spans(writes)

    def _commit_spans(self, writes: Sequence[_Rows]) -> None:
        """The batch's spans, in a transaction of their own once its events are answered: a
        span never holds back a 202. Spans that cannot be stored are lost, with a warning."""
        rows = [row for write in writes for row in write.spans]
        if not rows:
            return
        connection = self._connection
        try:
            connection.execute("BEGIN")
            _insert(connection, _SPANS, rows)
            connection.execute("COMMIT")
        except Exception as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            log.warning("%d spans could not be stored: %s", len(rows), error)

    def _write_each(self, writes: list[_Rows]) -> None:
        """One transaction per write: a bad row is refused alone, store trouble delays the rest."""
        seq = self._next_seq
        retry: list[_Write] = []
        for rows in writes:
            if rows.accepted is not None:
                rows.renumber(seq)
            try:
                self._commit([rows])
            except sqlite3.OperationalError as error:
                # The store's own trouble (disk full, I/O error): not the event's fault.
                log.error("the broker store cannot write: %s", error)
                rows.error = StoreError(str(error))
                if rows.accepted is None:
                    retry.append(rows.item)
            except Exception as error:
                log.exception("a write the store cannot take was refused alone")
                rows.error = Unstorable(f"the broker cannot store this event: {error}")
            else:
                seq += rows.accepted is not None
        self._next_seq = seq
        self._loop.call_soon_threadsafe(self._done, writes, tuple(retry))

    def _commit(self, writes: Sequence[_Rows], *, with_spans: bool = True) -> None:
        connection = self._connection
        try:
            connection.execute("BEGIN")
            for statement, rows in (
                (_EVENTS, [row for write in writes for row in write.events]),
                (_DELIVERIES, [row for write in writes for row in write.deliveries]),
                (_ATTEMPTS, [row for write in writes for row in write.attempts]),
                (_DEAD_LETTERS, [row for write in writes for row in write.dead_letters]),
                (_SPANS, [row for write in writes for row in write.spans] if with_spans else []),
            ):
                _insert(connection, statement, rows)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _done(self, writes: list[_Rows], retry: tuple[_Write, ...]) -> None:
        """On the loop, after a batch: answer its waiters, start its deliveries, send the next.

        Outcome records the store could not take for its own trouble go round again, after a
        pause: they are the journal of deliveries that happened.
        """
        self._in_flight = False
        committed = [
            (rows.accepted.envelope, rows.accepted.triggers)
            for rows in writes
            if rows.accepted is not None and rows.error is None
        ]
        if committed:
            self._on_committed(committed)
        for rows in writes:
            accepted = rows.accepted
            if accepted is None:
                continue
            self.waiting -= 1
            if accepted.future.done():
                continue
            if rows.error is None:
                accepted.future.set_result(accepted.envelope)
            else:
                accepted.future.set_exception(rows.error)
        if self.on_load is not None:
            self.on_load()
        if retry:
            self._loop.call_later(RETRY_SECONDS, self._requeue, retry)
        if self._gathered:
            self._hand_over()

    def _requeue(self, items: tuple[_Write, ...]) -> None:
        self._gathered[:0] = items
        if not self._scheduled and not self._in_flight:
            self._scheduled = True
            self._loop.call_soon(self._hand_over)


@dataclass(slots=True)
class _Rows:
    """The rows one queued write adds, and how writing them went."""

    item: _Write
    accepted: _Accept | None = None
    events: list[tuple[object, ...]] = field(default_factory=list)
    deliveries: list[tuple[object, ...]] = field(default_factory=list)
    attempts: list[tuple[object, ...]] = field(default_factory=list)
    dead_letters: list[tuple[object, ...]] = field(default_factory=list)
    spans: Sequence[tuple[object, ...]] = ()
    error: Exception | None = None

    @classmethod
    def of(cls, item: _Write, seq: int) -> _Rows:
        rows = cls(item)
        if isinstance(item, _Accept):
            rows.accepted = item
            rows.renumber(seq)
            return rows
        if item.attempt is not None:
            rows.attempts.append(item.attempt)
        if item.delivery is not None:
            rows.deliveries.append(item.delivery)
        if item.dead_letter is not None:
            rows.dead_letters.append(item.dead_letter)
        rows.spans = item.spans
        return rows

    def renumber(self, seq: int) -> None:
        """Give the accepted event `seq` (its rows are built anew)."""
        accepted = self.accepted
        assert accepted is not None
        accepted.envelope.seq = seq
        self.events = [(seq, *accepted.row)]
        self.deliveries = [
            (seq, trigger, state, 0, None, None, None, None)
            for triggers, state in (
                (accepted.triggers, State.PENDING.value),
                (accepted.queued, State.QUEUED.value),
            )
            for trigger in triggers
        ]


def _insert(connection: sqlite3.Connection, prefix: str, rows: list[tuple[object, ...]]) -> None:
    """Insert `rows` with few statements: each one releases and retakes the GIL only once."""
    if not rows:
        return
    width = len(rows[0])
    start = 0
    while start < len(rows):
        size = next(size for size in _CHUNKS if size <= len(rows) - start)
        chunk = rows[start : start + size]
        connection.execute(
            _statement(prefix, width, size), [value for row in chunk for value in row]
        )
        start += size


@functools.cache
def _statement(prefix: str, width: int, rows: int) -> str:
    values = "(" + ",".join("?" * width) + ")"
    return prefix + ",".join([values] * rows)
