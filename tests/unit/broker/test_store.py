"""The store: group commits, sequence numbers, outcomes, recovery, and the journal reader."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from services.kit.http_binding import WireEvent
from shop.broker.envelope import Envelope
from shop.broker.journal import Journal
from shop.broker.store import DeliveryState, Writer, connect, load_pending


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
