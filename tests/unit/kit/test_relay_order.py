"""The outbox relay sends events in the order their changes committed, oldest first."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kit import HandlerSet, KitConfig, NewEvent, Service, create_service
from kit.relay import BATCH_SIZE
from tests.support.processes import wait_for
from tests.support.recording_sink import RecordingSink


@pytest.fixture
def producer(database_url: str, broker: RecordingSink) -> Iterator[Service]:
    """A kit service whose real relay thread posts to the recording broker."""
    config = KitConfig(
        service="producer",
        database_url=database_url,
        source="/shop/producer",
        sink=broker.url,
        relay_poll_seconds=0.1,
        log_level="WARNING",
    )
    service = create_service("producer", HandlerSet(), config=config).start()
    yield service
    service.close()


def test_the_relay_sends_more_than_a_batch_oldest_first(
    producer: Service, broker: RecordingSink
) -> None:
    # More than one batch: the first claim must take the oldest rows, and post them in order.
    count = BATCH_SIZE + 5
    with producer.transaction() as tx:
        for n in range(count):
            tx.emit(NewEvent("t.numbered", {"n": n}))
    arrived = wait_for(
        lambda: broker.accepted() if len(broker.accepted()) >= count else None,
        timeout=30,
        what=f"{count} events at the broker",
    )
    assert [json.loads(received.body)["n"] for received in arrived] == list(range(count))


def test_events_of_separate_transactions_arrive_in_commit_order(
    producer: Service, broker: RecordingSink
) -> None:
    for n in range(5):
        with producer.transaction() as tx:
            tx.emit(NewEvent("t.numbered", {"n": n}))
    arrived = wait_for(
        lambda: broker.accepted() if len(broker.accepted()) >= 5 else None,
        what="5 events at the broker",
    )
    assert [json.loads(received.body)["n"] for received in arrived] == [0, 1, 2, 3, 4]
