"""The real RabbitMQ the RabbitMQBroker tests use (127.0.0.1:5672, guest/guest), and cleaning up
what a test's brokers declared on it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable

import aio_pika

from shop.broker.rabbitmq import naming
from tests.conftest import require

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def require_rabbitmq() -> None:
    """Skip the test unless RabbitMQ answers on 127.0.0.1:5672 (CI runs one)."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        require(False, "no RabbitMQ on 127.0.0.1:5672 -> start rabbitmq-server")


def delete_broker(namespace: str, broker: str, triggers: Iterable[str]) -> None:
    """Delete the exchanges and queues of a RabbitMQBroker and of its `triggers` (names), as
    shop.broker.rabbitmq.naming names them; those that do not exist are passed over."""
    asyncio.run(_delete(namespace, broker, tuple(triggers)))


async def _delete(namespace: str, broker: str, triggers: tuple[str, ...]) -> None:
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
    connection = await aio_pika.connect(AMQP)
    try:
        for name in queues:
            # A failed delete closes its channel: one channel each.
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(name)
        for name in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(name)
    finally:
        await connection.close()
