"""Declaring a RabbitMQBroker's exchanges, queues and bindings (idempotent, at every connect),
and deleting them again (a benchmark's or a test's broker, afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import AMQPError

from shop.broker.rabbitmq import naming
from shop.broker.rabbitmq.plan import DLQ_ARGUMENT, BrokerPlan, TriggerPlan

# Quorum queues came with RabbitMQ 3.8; an older server only has classic ones.
_QUORUM_SINCE = (3, 8)


def binds(binding: Mapping[str, str], headers: Mapping[str, object]) -> bool:
    """Whether a headers exchange routes a message with `headers` along an `x-match: all`
    `binding`: RabbitMQ's own rule (keys starting `x-` are not matched), so that the journal
    knows which trigger queues an event went to."""
    return all(
        headers.get(key) == value for key, value in binding.items() if not key.startswith("x-")
    )


def supports_quorum(server_version: str) -> bool:
    """Whether a RabbitMQ of this `version` server property has quorum queues."""
    numbers = []
    for part in server_version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers) >= _QUORUM_SINCE


async def declare_broker(
    channel: AbstractChannel, plan: BrokerPlan, quorum: bool
) -> dict[str, AbstractQueue]:
    """Declare everything of `plan`; the queues by name (trigger queues and dead-letter queues)."""
    queue_type = "quorum" if quorum and plan.queue_type == "quorum" else "classic"
    exchange = await _exchange(channel, plan.exchange)
    queues: dict[str, AbstractQueue] = {}
    if plan.dead_letter is not None:
        dlx_name, dlq_name, _ = plan.dead_letter
        dlx = await _exchange(channel, dlx_name)
        queue = await _queue(channel, dlq_name, queue_type, None)
        await queue.bind(dlx, arguments={"x-match": "all", DLQ_ARGUMENT: plan.route.name})
        queues[dlq_name] = queue
    for trigger in plan.triggers:
        queues.update(await _declare_trigger(channel, exchange, trigger, queue_type))
    return queues


async def _declare_trigger(
    channel: AbstractChannel, exchange: AbstractExchange, trigger: TriggerPlan, queue_type: str
) -> dict[str, AbstractQueue]:
    queues: dict[str, AbstractQueue] = {}
    if trigger.own_dead_letter is not None:
        dlx_name, dlq_name, _ = trigger.own_dead_letter
        dlx = await _exchange(channel, dlx_name)
        dlq = await _queue(channel, dlq_name, queue_type, None)
        await dlq.bind(dlx, arguments={"x-match": "all"})
        queues[dlq_name] = dlq
    queue = await _queue(channel, trigger.queue, queue_type, trigger.dead_letter_exchange)
    await queue.bind(exchange, arguments=dict(trigger.binding))
    queues[trigger.queue] = queue
    return queues


async def _exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.HEADERS, durable=True)


async def _queue(
    channel: AbstractChannel, name: str, queue_type: str, dead_letter_exchange: str | None
) -> AbstractQueue:
    # The operator sets the dead-letter exchange by policy; an argument does the same without
    # the management API (the dispatcher publishes its failures there itself anyway).
    arguments: dict[str, str] = {"x-queue-type": queue_type}
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
    return await channel.declare_queue(name, durable=True, arguments=arguments)  # type: ignore[arg-type]


def delete_broker(url: str, namespace: str, broker: str, triggers: Iterable[str]) -> None:
    """Delete the exchanges and queues of Broker `broker` and of its `triggers` (names), as
    `naming` names them, on the RabbitMQ at `url`; those that do not exist are passed over."""
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
