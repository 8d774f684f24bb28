"""The outcome recorder's rows: what the journal shows and what a restart takes up again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from shop.broker.dispatcher import Delivery
from shop.broker.envelope import Envelope
from shop.broker.journal import Journal
from shop.broker.metrics import BrokerMetrics
from shop.broker.outcomes import Attempt, Failure, OutcomeRecorder, Phase
from shop.broker.sender import AttemptResult
from shop.broker.store import Writer, connect, load_pending
from wire.http_binding import WireEvent

TRIGGER = "shop/t"


def envelope() -> Envelope:
    event = WireEvent(
        {"specversion": "1.0", "id": "e1", "source": "/s", "type": "t", "knativebrokerttl": 255},
        b"{}",
    )
    return Envelope("shop/default", event, (), time.time())


def attempt(stored: Envelope, phase: Phase, number: int, status: int) -> Attempt:
    result = AttemptResult(status, b"busy", error=f"the destination answered {status}")
    return Attempt(
        stored, TRIGGER, phase, number, "http://x", time.time(), 0.001, result, "http://x"
    )


def record(database: Path, outcomes: list[tuple[Phase, int, Failure | None]]) -> int:
    """Store one event, then record each attempt: `failed` for a subscriber attempt given a
    failure, else a retry."""

    async def run() -> int:
        connection = connect(database, "normal")
        writer = Writer(connection, asyncio.get_running_loop(), lambda batch: None)
        writer.start()
        stored = await writer.accept(envelope(), (TRIGGER,))
        recorder = OutcomeRecorder(writer, BrokerMetrics())
        for phase, number, failure in outcomes:
            tried = attempt(stored, phase, number, 503)
            if failure is not None and phase is Phase.SUBSCRIBER:
                recorder.failed(tried, failure, "no retries left")
            else:
                recorder.retry(tried, 60.0, failure)
        writer.stop()
        connection.close()
        return stored.seq

    return asyncio.run(run())


def test_a_retry_of_the_dead_letter_sink_is_taken_up_after_a_restart_in_that_phase(
    tmp_path: Path,
) -> None:
    database = tmp_path / "broker.db"
    failure = Failure("http://subscriber", 503, b"busy")
    seq = record(
        database,
        [
            (Phase.SUBSCRIBER, 1, None),
            (Phase.SUBSCRIBER, 2, failure),
            (Phase.DEAD_LETTER, 1, failure),
        ],
    )

    (pending,) = load_pending(connect(database, "normal"))
    resumed = Delivery.resumed(pending.envelope, pending.state)
    assert resumed.phase is Phase.DEAD_LETTER
    assert resumed.attempts == 1
    assert resumed.failure == failure
    detail = Journal(database).event(seq)
    assert detail is not None
    assert detail["deliveries"] == [{"trigger": TRIGGER, "state": "dead_lettering", "attempts": 1}]
    assert [(a["target"], a["attempt"], a["outcome"]) for a in detail["attempts"]] == [
        ("subscriber", 1, "retry"),
        ("subscriber", 2, "failed"),
        ("dead_letter_sink", 1, "retry"),
    ]
