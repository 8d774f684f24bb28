"""Durability: what got a 202 is delivered, even across kill -9; SIGTERM stops promptly.

Each test runs on both broker classes; a RabbitMQBroker also keeps what it accepted when its
connection to RabbitMQ is cut under it (through the test's own proxy, `tests/support/tcp_proxy.py`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import aiohttp
import pytest
import requests

from shop.broker.rabbitmq.plan import PARALLELISM_ANNOTATION
from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.support.broker_classes import RABBITMQ, BrokerClass
from tests.support.broker_process import BrokerProcess
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Answer, Received, sleep
from tests.support.tcp_proxy import TcpProxy
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
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory(sleep(0.002, 202))
    trigger = broker_class.trigger("t", {"uri": sub.url})
    # Four deliveries at once: the store's --concurrency, a RabbitMQ Trigger's parallelism.
    trigger["metadata"]["annotations"] = {PARALLELISM_ANNOTATION: "4"}
    broker = start_broker([broker_class.broker(), trigger], {}, "--concurrency", "4")
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
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    stuck = subscriber_factory(sleep(30, 202))
    broker: BrokerProcess = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": stuck.url})]
    )
    headers, body = to_binary(event := wire_event("test.stuck"))
    assert requests.post(broker.ingress(), headers=headers, data=body, timeout=5).status_code == 202
    stuck.wait_for(1)
    started = time.monotonic()
    assert broker.stop(timeout=5) == 0
    assert time.monotonic() - started < 5
    stuck.script = sleep(0, 202)
    broker.start()
    wait_for(lambda: stuck.ids().count(event.id) >= 2, what="redelivery after the restart")


@pytest.mark.parametrize("broker_class_name", [RABBITMQ], ids=["rabbitmq"])
def test_a_cut_rabbitmq_connection_answers_503_then_reconnects_and_loses_nothing(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    """Cut while the dispatcher holds the events unacked: RabbitMQ hands them out again once
    the broker is back, each at most twice; meanwhile the ingress answers 503."""
    gate = threading.Event()

    def held_until_the_gate_opens(n: int, received: Received) -> Answer:
        gate.wait(15)
        return Answer(202)

    sub = subscriber_factory(held_until_the_gate_opens)
    proxy = TcpProxy("127.0.0.1", 5672).start()
    try:
        through = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.5"
        manifests = [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url})]
        broker = start_broker(manifests, {}, "--rabbitmq", through)
        held = [send_one(broker, f"held-{n}").status_code for n in range(20)]
        assert held == [202] * 20
        sub.wait_for(1)  # the first is at the subscriber, the rest prefetched: all unacked
        assert proxy.cut() >= 2
        refused = wait_for(
            lambda: r if (r := send_one(broker, "refused")).status_code == 503 else None,
            what="a 503 while RabbitMQ is cut off",
        )
        assert "not reachable" in refused.json()["error"]
        gate.set()
        proxy.restore()
        wait_for(
            lambda: send_one(broker, "after").status_code == 202,
            timeout=15,
            what="a 202 once the broker reconnected",
        )
        accepted = [f"held-{n}" for n in range(20)] + ["after"]
        wait_for(lambda: set(accepted) <= set(sub.ids()), timeout=20, what="every event delivered")
    finally:
        proxy.close()
    counts = Counter(sub.ids())
    assert "refused" not in counts  # answered 503: not accepted, not delivered
    # At least once: an event the dispatcher held unacked may come twice, never more; what
    # was accepted after the reconnect comes once.
    assert max(counts.values()) <= 2 and counts["after"] == 1, counts


def send_one(broker: BrokerProcess, event_id: str) -> requests.Response:
    headers, body = to_binary(wire_event("test.cut", id=event_id))
    return requests.post(broker.ingress(), headers=headers, data=body, timeout=10)
