"""The RabbitMQ class's ceiling on this machine: its AMQP work alone, without HTTP or journal.

One process does what a RabbitMQBroker's process does per event, and nothing else: `connections`
publishers send persistent messages with publisher confirms (each waits for its confirm, as the
ingress does before its 202) to a durable headers exchange bound to one quorum queue, and one
consumer (prefetch 100, as the dispatcher) acknowledges each message. Events/s is confirmed
publishes over the time until the last one was consumed: the same measure as the broker
setups', so the ratio says how much of RabbitMQ's own rate the broker's HTTP and journal keep.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

PREFETCH = 100
BODY = b'{"n": 0, "pad": "' + b"x" * 64 + b'"}'


async def events_per_second(url: str, *, connections: int, seconds: float) -> float:
    """Confirmed publishes per second, through to their consumption, for `seconds`."""
    name = f"bench-amqp-{uuid.uuid4().hex[:8]}"
    publisher = await aio_pika.connect(url)
    consumer = await aio_pika.connect(url)
    try:
        setup = await publisher.channel()
        exchange = await setup.declare_exchange(name, aio_pika.ExchangeType.HEADERS, durable=True)
        queue = await setup.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, arguments={"x-match": "all", "type": "bench"})
        consumed = 0
        last = 0.0

        async def take(message: AbstractIncomingMessage) -> None:
            nonlocal consumed, last
            await message.ack()
            consumed += 1
            last = time.monotonic()

        reading = await consumer.channel()
        await reading.set_qos(prefetch_count=PREFETCH)
        await (await reading.get_queue(name)).consume(take)
        publishing = await publisher.channel(publisher_confirms=True)
        target = await publishing.get_exchange(name)
        published = 0
        started = time.monotonic()
        stop = started + seconds

        async def publish() -> None:
            nonlocal published
            while time.monotonic() < stop:
                message = aio_pika.Message(
                    BODY,
                    headers={"type": "bench", "id": str(published)},
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await target.publish(message, routing_key="")
                published += 1

        await asyncio.gather(*(publish() for _ in range(connections)))
        deadline = time.monotonic() + 60
        while consumed < published and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if consumed < published:
            raise SystemExit(f"amqp alone: only {consumed} of {published} messages consumed")
        await setup.exchange_delete(name)
        await setup.queue_delete(name)
        return published / max(last - started, seconds)
    finally:
        await consumer.close()
        await publisher.close()
