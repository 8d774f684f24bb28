"""The RabbitMQ objects of a benchmark's RabbitMQBroker, deleted after its setup.

As `tests/support/rabbitmq.py` deletes a test's: the names are those
`shop.broker.rabbitmq.naming` gives; objects that do not exist are passed over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import aio_pika
from aio_pika.exceptions import AMQPError

from shop.broker.rabbitmq import naming


def delete_broker(url: str, namespace: str, broker: str, triggers: Iterable[str]) -> None:
    """Delete the exchanges and queues of Broker `broker` and of its `triggers` (names)."""
    asyncio.run(_delete(url, namespace, broker, tuple(triggers)))


async def _delete(url: str, namespace: str, broker: str, triggers: tuple[str, ...]) -> None:
    uid = naming.broker_uid(namespace, broker)
    queues = [naming.broker_dead_letter_queue(namespace, broker, uid)]
    exchanges = [naming.broker_exchange(namespace, broker, uid, dlx=d) for d in (False, True)]
    for trigger in triggers:
        tuid = naming.trigger_uid(namespace, trigger)
        queues += [
            naming.trigger_queue(namespace, trigger, uid),
            naming.trigger_dead_letter_queue(namespace, trigger, tuid),
        ]
        exchanges.append(naming.trigger_dead_letter_exchange(namespace, trigger, tuid))
    connection = await aio_pika.connect(url)
    try:
        for name in queues:
            # A failed delete closes its channel: one channel each.
            channel = await connection.channel()
            with contextlib.suppress(AMQPError):
                await channel.queue_delete(name)
        for name in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(AMQPError):
                await channel.exchange_delete(name)
    finally:
        await connection.close()
