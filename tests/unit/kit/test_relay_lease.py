"""The outbox relay's lease: held while a slow post goes on, free soon after its holder stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from kit import relay
from kit.database import KIT_METADATA, create_engine
from kit.metrics import KitMetrics
from kit.outbox import enqueue, outbox
from kit.outgoing import Message
from kit.relay import OutboxRelay, RelaySettings
from tests.support.scripted_subscriber import ScriptedSubscriber, sleep

LEASE_SECONDS = 1.0


@pytest.fixture(autouse=True)
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "LEASE_SECONDS", LEASE_SECONDS)
    monkeypatch.setattr(relay, "RENEW_SECONDS", LEASE_SECONDS / 3)


def relay_on(engine: sa.Engine, sink: str) -> OutboxRelay:
    return OutboxRelay(engine, RelaySettings(sink, {}, timeout_seconds=30), KitMetrics(lambda: 0))


def test_a_slow_post_keeps_its_rows_and_a_dead_relay_frees_them_within_the_lease(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/outbox.db")
    KIT_METADATA.create_all(engine)
    with engine.begin() as connection:
        for n in range(2):
            message = Message({"ce-id": f"e-{n}", "ce-type": "t", "ce-source": "/s"}, b"")
            enqueue(connection, f"e-{n}", "t", message)
    slow = ScriptedSubscriber(sleep(LEASE_SECONDS * 1.6))
    first = relay_on(engine, slow.url)
    second = relay_on(engine, slow.url)
    try:
        posting = threading.Thread(target=first.run_once, daemon=True)
        posting.start()
        time.sleep(LEASE_SECONDS * 1.3)  # past one lease: only the renewals hold the rows
        assert second.run_once() == 0, "another relay took rows that were being posted"
        posting.join()
        assert len(slow.received()) == 2
        with engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0
    finally:
        slow.close()
    engine.dispose()


def test_rows_leased_by_a_relay_that_died_are_taken_once_the_lease_runs_out(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/outbox.db")
    KIT_METADATA.create_all(engine)
    with engine.begin() as connection:
        enqueue(connection, "e-1", "t", Message({"ce-id": "e-1"}, b""))
        # What a relay that died mid-post leaves: its lease, no renewals.
        connection.execute(
            outbox.update().values(lease_until=time.time() + LEASE_SECONDS, lease_owner="gone")
        )
    sink = ScriptedSubscriber()
    relay = relay_on(engine, sink.url)
    try:
        assert relay.run_once() == 0
        deadline = time.monotonic() + LEASE_SECONDS + 2
        while relay.run_once() == 0:
            assert time.monotonic() < deadline, "the dead relay's rows stayed leased"
            time.sleep(0.2)
        assert [r.headers["ce-id"] for r in sink.received()] == ["e-1"]
    finally:
        sink.close()
    engine.dispose()
