"""The store: group commits, sequence numbers, outcomes, recovery, and the journal reader."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shop.broker import store
from shop.broker.envelope import Envelope
from shop.broker.journal import Journal
from shop.broker.store import (
    Checkpointer,
    DeliveryState,
    Unstorable,
    Writer,
    connect,
    load_pending,
)
from wire.http_binding import WireEvent


def envelope(n: int) -> Envelope:
    event = WireEvent(
        {"specversion": "1.0", "id": f"e{n}", "source": "/s", "type": "t", "knativebrokerttl": 255},
        b'{"n": %d}' % n,
    )
    return Envelope("shop/default", event, (("x-request-id", f"r{n}"),), time.time())


def test_concurrent_accepts_share_commits_and_get_consecutive_seqs(tmp_path: Path) -> None:
    database = tmp_path / "broker.db"
    committed: list[int] = []

    async def run() -> list[int]:
        connection = connect(database, "full")
        writer = Writer(
            connection,
            asyncio.get_running_loop(),
            lambda batch: committed.extend(e.seq for e, _ in batch),
        )
        writer.start()
        stored = await asyncio.gather(
            *(writer.accept(envelope(n), ("shop/a", "shop/b")) for n in range(50))
        )
        writer.stop()
        connection.close()
        return [e.seq for e in stored]

    seqs = asyncio.run(run())
    assert seqs == list(range(1, 51))
    assert sorted(committed) == seqs
    pending = load_pending(connect(database, "full"))
    assert len(pending) == 100
    assert pending[0].envelope.event.attributes["knativebrokerttl"] == 255
    assert pending[0].envelope.headers == (("x-request-id", "r0"),)


def test_outcomes_finish_deliveries_and_recovery_finds_the_rest(tmp_path: Path) -> None:
    database = tmp_path / "broker.db"

    async def run() -> None:
        connection = connect(database, "normal")
        writer = Writer(connection, asyncio.get_running_loop(), lambda batch: None)
        writer.start()
        first = await writer.accept(envelope(1), ("shop/a",))
        second = await writer.accept(envelope(2), ("shop/a",))
        writer.record(
            attempt=(
                first.seq,
                "shop/a",
                1,
                "subscriber",
                "http://x",
                time.time(),
                1.0,
                202,
                "delivered",
                None,
                None,
            ),
            delivery=DeliveryState(first.seq, "shop/a", "delivered", 1),
        )
        writer.record(delivery=DeliveryState(second.seq, "shop/a", "pending", 2, time.time() + 60))
        writer.stop()
        connection.close()

    asyncio.run(run())
    (left,) = load_pending(connect(database, "normal"))
    assert left.envelope.event.id == "e2"
    assert left.state.attempts == 2
    assert left.state.next_at is not None
    journal = Journal(database)
    events = journal.events()
    assert [e["id"] for e in events] == ["e1", "e2"]
    detail = journal.event(events[0]["seq"])
    assert detail is not None
    assert detail["data"] == {"n": 1}
    assert detail["attempts"][0]["outcome"] == "delivered"
    assert journal.events(after=events[0]["seq"], limit=5)[0]["id"] == "e2"


def attempt_row(seq: int, trigger: str) -> tuple[object, ...]:
    return (
        seq,
        trigger,
        1,
        "subscriber",
        "http://x",
        time.time(),
        1.0,
        202,
        "delivered",
        None,
        None,
    )


def test_a_write_sqlite_cannot_take_is_refused_alone_and_the_rest_of_its_batch_commits(
    tmp_path: Path,
) -> None:
    database = tmp_path / "broker.db"

    async def run() -> tuple[list[object], list[int]]:
        connection = connect(database, "normal")
        committed: list[int] = []
        writer = Writer(
            connection,
            asyncio.get_running_loop(),
            lambda batch: committed.extend(e.seq for e, _ in batch),
        )
        writer.start()
        first = await writer.accept(envelope(0), ("shop/a",))
        # One batch: valid events, outcome records, and an event whose row SQLite refuses (an
        # integer beyond 64 bits), all handed over in the same turn of the loop.
        poison = envelope(99)
        poison.parent_seq = 2**70
        waiting = [writer.accept(envelope(n), ("shop/a",)) for n in range(1, 6)]
        writer.record(
            attempt=attempt_row(first.seq, "shop/a"),
            delivery=DeliveryState(first.seq, "shop/a", "delivered", 1),
        )
        waiting.insert(3, writer.accept(poison, ("shop/a",)))
        waiting += [writer.accept(envelope(n), ("shop/a",)) for n in range(6, 9)]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        writer.stop()
        connection.close()
        return results, committed

    results, committed = asyncio.run(run())
    refused = [result for result in results if isinstance(result, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Unstorable)
    stored = [result.seq for result in results if isinstance(result, Envelope)]
    assert stored == list(range(2, 10))  # consecutive: the refused event took no number
    assert sorted(committed) == [1, *stored]
    journal = Journal(database)
    assert [e["id"] for e in journal.events()] == ["e0", *(f"e{n}" for n in range(1, 9))]
    detail = journal.event(1)
    assert detail is not None and detail["attempts"][0]["outcome"] == "delivered"
    assert detail["deliveries"] == [{"trigger": "shop/a", "state": "delivered", "attempts": 1}]


def test_an_event_that_cannot_be_written_as_utf8_is_refused_before_it_joins_a_batch(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        connection = connect(tmp_path / "broker.db", "normal")
        writer = Writer(connection, asyncio.get_running_loop(), lambda batch: None)
        bad = envelope(1)
        bad.event.attributes["subject"] = "\ud800"
        with pytest.raises(Unstorable):
            writer.accept(bad, ("shop/a",))
        connection.close()

    asyncio.run(run())


def test_the_wal_stays_bounded_under_a_writer_that_never_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A passive checkpoint alone never lets SQLite start the WAL over while commits keep
    # coming: the WAL would hold every commit of the run (here over 100 MiB).
    monkeypatch.setattr(store, "WAL_SIZE_LIMIT", 1024 * 1024)
    monkeypatch.setattr(store, "RESTART_WAL_BYTES", 256 * 1024)
    database = tmp_path / "broker.db"
    connection = connect(database, "normal")
    connection.execute("CREATE TABLE filler (x BLOB)")
    checkpointer = Checkpointer(database, interval=0.05)
    checkpointer.start()
    wal = database.with_name("broker.db-wal")
    largest = 0
    try:
        for number in range(800):  # commits back to back, as under load
            connection.executemany(
                "INSERT INTO filler VALUES (?)", [(b"x" * 3000,) for _ in range(10)]
            )
            connection.execute("DELETE FROM filler WHERE rowid < ?", (number * 10 - 500,))
            largest = max(largest, wal.stat().st_size)
            time.sleep(0.001)
    finally:
        checkpointer.stop()
        connection.close()
    assert largest <= 32 * 1024 * 1024, largest
