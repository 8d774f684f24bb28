"""Durability: what got a 202 is delivered, even across kill -9; SIGTERM stops promptly."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import pytest

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import sleep
from wire.http_binding import to_binary

EVENTS = 2000


async def produce(url: str, count: int, accepted: list[str]) -> None:
    """Post `count` events over 16 connections; record the ids that got a 202."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            while not queue.empty():
                queue.get_nowait()
                event = wire_event("test.durable", {"n": 1})
                headers, body = to_binary(event)
                try:
                    async with session.post(url, headers=headers, data=body) as response:
                        if response.status == 202:
                            accepted.append(event.id)
                except aiohttp.ClientError:
                    await asyncio.sleep(0.01)  # the broker is down: this one was not accepted

        await asyncio.gather(*(client() for _ in range(16)))


@pytest.mark.slow
def test_every_accepted_event_is_delivered_after_kill_9_and_restart(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(sleep(0.002, 202))
    broker = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": sub.url})], {}, "--concurrency", "4"
    )
    accepted: list[str] = []
    producer = threading.Thread(
        target=lambda: asyncio.run(produce(broker.ingress(), EVENTS, accepted))
    )
    producer.start()
    wait_for(lambda: len(accepted) >= EVENTS // 2, timeout=30, what="half the events accepted")
    broker.kill()
    killed_with = len(accepted)
    producer.join(60)
    delivered_before = set(sub.ids())
    assert len(delivered_before) < killed_with, "nothing was in flight when the broker died"
    broker.start()

    def all_delivered() -> bool:
        return set(accepted) <= set(sub.ids())

    try:
        wait_for(all_delivered, timeout=60, what="every accepted event delivered")
    except AssertionError:
        missing = set(accepted) - set(sub.ids())
        raise AssertionError(f"{len(missing)} of {len(accepted)} accepted events lost") from None
    assert len(accepted) >= killed_with


def test_sigterm_stops_the_broker_within_seconds_and_keeps_what_is_unfinished(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    stuck = subscriber_factory(sleep(30, 202))
    broker: BrokerProcess = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": stuck.url})]
    )
    headers, body = to_binary(event := wire_event("test.stuck"))
    import requests

    assert requests.post(broker.ingress(), headers=headers, data=body, timeout=5).status_code == 202
    stuck.wait_for(1)
    started = time.monotonic()
    assert broker.stop(timeout=5) == 0
    assert time.monotonic() - started < 5
    stuck.script = sleep(0, 202)
    broker.start()
    wait_for(lambda: stuck.ids().count(event.id) >= 2, what="redelivery after the restart")
