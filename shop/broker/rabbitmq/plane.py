"""The RabbitMQBroker data plane: connections, the ingress's confirmed publish, the dispatchers.

Each Broker of class RabbitMQBroker gets its own connection to its RabbitMQ. Until that
connection is up (and whenever it is down) the ingress answers 503; the topology is declared
and the dispatchers start at the first connect, and aio-pika's robust connection restores the
channels, consumers and declarations after a reconnect.

An accepted event is journaled first (the store's writer gives it its seq, `journal.py`), then
published with that seq; the producer's 202 waits for RabbitMQ's confirm. A publish that fails
is journaled as a `refused` attempt of the broker, the producer gets the 503 or 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shop.broker.acceptance import Accepts, Refused, stamp
from shop.broker.admission import Headers
from shop.broker.dispatcher import DeliveryIdentity
from shop.broker.envelope import Envelope
from shop.broker.metrics import BrokerMetrics
from shop.broker.rabbitmq.dispatcher import PREFETCH, QueueDispatcher, Target
from shop.broker.rabbitmq.journal import SEQ_HEADER, RabbitJournal
from shop.broker.rabbitmq.message import message_headers, to_message
from shop.broker.rabbitmq.plan import BrokerPlan
from shop.broker.rabbitmq.topology import binds, declare_broker, supports_quorum
from shop.broker.routes import BrokerRoute
from shop.broker.sender import Sender
from shop.broker.tracing import SpanContext
from wire.http_binding import WireEvent

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
DEPTH_POLL_SECONDS = 1.0


@dataclass
class _Broker:
    plan: BrokerPlan
    connection: AbstractRobustConnection | None = None
    exchange: AbstractExchange | None = None
    #: The channel (with publisher confirms) the ingress publishes on.
    publisher: AbstractChannel | None = None
    queues: dict[str, AbstractQueue] = field(default_factory=dict)
    dispatchers: dict[str, QueueDispatcher] = field(default_factory=dict)
    #: Messages ready in each trigger's queue (passive declares, every second).
    depth: dict[str, int] = field(default_factory=dict)


class RabbitPlane(Collector):
    """Every RabbitMQBroker of the process; the ingress hands it the events of those brokers."""

    def __init__(
        self,
        plans: Mapping[str, BrokerPlan],
        sender: Sender,
        metrics: BrokerMetrics,
        default_timeout: float,
        journal: RabbitJournal,
        *,
        identity: DeliveryIdentity | None = None,
    ) -> None:
        self._brokers = {key: _Broker(plan) for key, plan in plans.items()}
        self._identity = identity
        self._sender = sender
        self._metrics = metrics
        self._journal = journal
        self._default_timeout = default_timeout
        self._tasks: list[asyncio.Task[None]] = []
        metrics.registry.register(self)

    def serves(self, broker: str) -> bool:
        """Whether `broker` (`namespace/name`) is a RabbitMQBroker."""
        return broker in self._brokers

    def start(self) -> None:
        """Connect every broker in the background (retrying until its RabbitMQ answers)."""
        for broker in self._brokers.values():
            self._tasks.append(
                asyncio.create_task(self._run(broker), name=f"rabbitmq {broker.plan.key}")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for broker in self._brokers.values():
            for dispatcher in broker.dispatchers.values():
                await dispatcher.stop()
            if broker.connection is not None:
                with contextlib.suppress(Exception):
                    await broker.connection.close()

    async def accept(
        self,
        route: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        parent: tuple[int, str] | None = None,
    ) -> int | None:
        """Journal the event, publish it to the broker's exchange, and return once RabbitMQ
        confirmed it; its journal seq (None: the journal could not take it). `parent`: the
        journal seq and trigger of the event this one replies to."""
        now = time.time()
        stamped = stamp(event, now)
        return await self._publish(
            route, stamped, now, self.targets(route, stamped), parent=parent, routed=True
        )

    def targets(self, route: BrokerRoute, event: WireEvent) -> tuple[str, ...]:
        """The Triggers whose binding routes `event` to their queue (RabbitMQ's own rule)."""
        headers = message_headers(event)
        triggers = self._brokers[route.key].plan.triggers
        return tuple(t.route.key for t in triggers if binds(t.binding, headers))

    async def resend(
        self,
        route: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        triggers: tuple[str, ...],
        *,
        routed: bool,
    ) -> int | None:
        """Journal and publish an event accepted again (`shop.broker.replay`): `routed`, to the
        broker's exchange (`triggers` are its bindings' targets), else to each Trigger's queue
        only."""
        return await self._publish(route, event, time.time(), triggers, routed=routed)

    async def _publish(
        self,
        route: BrokerRoute,
        stamped: WireEvent,
        now: float,
        queued: tuple[str, ...],
        *,
        routed: bool,
        parent: tuple[int, str] | None = None,
    ) -> int | None:
        broker = self._brokers[route.key]
        exchange, publisher = broker.exchange, broker.publisher
        if exchange is None or publisher is None:
            raise Refused(503, f"RabbitMQ of broker {route.key} is not reachable; retry later")
        seq = await self._journal.accepted(
            Envelope(
                route.key,
                stamped,
                (),  # pass-through headers are not carried by this class
                now,
                parent_seq=None if parent is None else parent[0],
                parent_trigger=None if parent is None else parent[1],
            ),
            queued,
        )
        extra = None if seq is None else {SEQ_HEADER: seq}
        message = to_message(stamped, extra)
        # The default exchange routes by queue name: a Trigger's queue alone gets the message.
        queues = {t.route.key: t.queue for t in broker.plan.triggers}
        destinations = [(exchange.name, "")] if routed else [("", queues[t]) for t in queued]
        try:
            for name, routing_key in destinations:
                await publish_confirmed(publisher, name, message, routing_key)
        except DeliveryError as error:
            refused = Refused(500, f"RabbitMQ refused the event (nack): {error}")
        except (ChannelInvalidStateError, ConnectionError, AMQPError) as error:
            refused = Refused(503, f"RabbitMQ of broker {route.key} is not reachable: {error}")
        else:
            return seq
        if seq is not None:
            self._journal.refused(
                seq, route.key, broker.plan.exchange, refused.status, refused.message, queued=queued
            )
        raise refused

    async def _run(self, broker: _Broker) -> None:
        plan = broker.plan
        while broker.connection is None:
            try:
                broker.connection = await aio_pika.connect_robust(plan.url)
            except (OSError, AMQPError) as error:
                log.warning("broker %s: cannot reach RabbitMQ (%s); retrying", plan.key, error)
                await asyncio.sleep(RECONNECT_SECONDS)
        connection = broker.connection
        version = _server_version(connection)
        channel = await connection.channel(publisher_confirms=True)
        broker.queues = await declare_broker(channel, plan, supports_quorum(version))
        await self._start_dispatchers(broker, channel)
        broker.exchange = await channel.get_exchange(plan.exchange)
        broker.publisher = channel
        log.info("broker %s: on RabbitMQ %s, exchange %s", plan.key, version, plan.exchange)
        while True:
            await self._poll_depth(broker)
            await asyncio.sleep(DEPTH_POLL_SECONDS)

    async def _start_dispatchers(self, broker: _Broker, publisher: AbstractChannel) -> None:
        plan = broker.plan
        for trigger in plan.triggers:
            route = trigger.route
            dlx = None
            if trigger.dead_letter_exchange is not None:
                dlx = await publisher.get_exchange(trigger.dead_letter_exchange)
            target = Target(
                trigger=route.key,
                broker=plan.key,
                namespace=route.namespace,
                url=route.subscriber_url,
                audience=route.subscriber_audience,
                retry=trigger.retry,
                delivery=trigger.delivery,
                timeout=route.delivery.timeout or self._default_timeout,
                parallelism=trigger.parallelism,
                dead_letter_exchange=dlx,
            )
            await self._consume(broker, trigger.queue, target)
            if trigger.own_dead_letter is not None:
                _, dlq, sink = trigger.own_dead_letter
                await self._consume(broker, dlq, _to_sink(target, sink, route.dead_letter_audience))
        _, broker_dlq, broker_sink = plan.dead_letter or (None, None, None)
        if broker_dlq is not None and broker_sink is not None:
            fallback = next(t for t in plan.triggers if t.own_dead_letter is None)
            base = Target(
                trigger=plan.key,
                broker=plan.key,
                namespace=plan.route.namespace,
                url=broker_sink,
                audience=None,
                retry=fallback.retry,
                delivery=fallback.delivery,
                timeout=fallback.route.delivery.timeout or self._default_timeout,
                parallelism=1,
            )
            audience = fallback.route.dead_letter_audience
            await self._consume(broker, broker_dlq, _to_sink(base, broker_sink, audience))

    async def _consume(self, broker: _Broker, queue_name: str, target: Target) -> None:
        assert broker.connection is not None
        channel = await broker.connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        # A passive declare (ensure=True): only a declared queue is restored with its
        # consumer when the robust connection reconnects.
        queue = await channel.get_queue(queue_name)
        route = broker.plan.route

        async def accept_reply(reply: WireEvent, parent: tuple[int, str] | None) -> int | None:
            return await self.accept(route, reply, (), parent)

        dispatcher = QueueDispatcher(
            target,
            self._sender,
            self._metrics,
            self._journal,
            accept_reply,
            identity=self._identity,
        )
        await dispatcher.start(queue)
        broker.dispatchers[queue_name] = dispatcher

    async def _poll_depth(self, broker: _Broker) -> None:
        for trigger in broker.plan.triggers:
            queue = broker.queues.get(trigger.queue)
            if queue is None:
                continue
            try:
                # On the underlying channel: the robust channel's passive declare answers
                # from its cache, a count that never changes.
                channel = await queue.channel.get_underlay_channel()
                declared = await channel.queue_declare(trigger.queue, passive=True)
            except (AMQPError, ConnectionError, ChannelInvalidStateError) as error:
                log.debug("queue depth of %s unknown: %s", trigger.queue, error)
                continue
            broker.depth[trigger.route.key] = declared.message_count or 0

    def backlog(self) -> dict[str, int]:
        """Per trigger: messages in its queue plus those its dispatcher holds (in flight,
        retrying) — what `shop_broker_backlog` reports for the SQLite broker."""
        found: dict[str, int] = {}
        for broker in self._brokers.values():
            for trigger in broker.plan.triggers:
                key = trigger.route.key
                dispatcher = broker.dispatchers.get(trigger.queue)
                held = dispatcher.in_flight if dispatcher is not None else 0
                found[key] = broker.depth.get(key, 0) + held
        return found

    def queue_depths(self) -> Iterator[tuple[str, str, int]]:
        """(trigger, queue, messages ready) of every trigger queue, as last polled."""
        for broker in self._brokers.values():
            for trigger in broker.plan.triggers:
                key = trigger.route.key
                if key in broker.depth:
                    yield key, trigger.queue, broker.depth[key]

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "shop_broker_rabbitmq_queue_messages",
            "Messages ready in a RabbitMQBroker trigger's queue (a passive declare, each second).",
            labels=["trigger", "queue"],
        )
        for trigger, queue, count in sorted(self.queue_depths()):
            depth.add_metric([trigger, queue], count)
        yield depth


def _to_sink(target: Target, sink: str, audience: str | None) -> Target:
    """The dead-letter dispatcher of `target`: to the sink, one worker, failures dropped."""
    return replace(
        target,
        url=sink,
        audience=audience,
        parallelism=1,
        dead_letter_exchange=None,
        dead_letter=True,
    )


async def publish_confirmed(
    channel: AbstractChannel, exchange: str, message: aio_pika.Message, routing_key: str = ""
) -> None:
    """Publish `message` to `exchange` on `channel` (with publisher confirms) and return once
    RabbitMQ confirmed it (a nack raises DeliveryError); `routing_key` is a queue's name for
    the default exchange `""`.

    As `exchange.publish` does, but without waiting, the channel's lock held, for the
    connection's writer to write the frames out: that wait serialises every publish of the
    channel on two turns of the event loop, and promises nothing (written is not received).
    The frames still go out in order, the confirms are awaited each.
    """
    if channel.is_closed:
        raise ChannelInvalidStateError(f"{channel!r} closed")
    underlay = await channel.get_underlay_channel()
    # aiormq's Channel takes `wait`; its abstract class does not declare it.
    await underlay.basic_publish(  # type: ignore[call-arg]
        message.body,
        exchange=exchange,
        routing_key=routing_key,
        properties=message.properties,
        mandatory=False,
        wait=False,
    )


def _server_version(connection: AbstractRobustConnection) -> str:
    transport = connection.transport
    if transport is None:
        return "0"
    return str(transport.connection.server_properties.get("version", "0"))


class ByBrokerClass:
    """The ingress's hand-off: RabbitMQBrokers' events to RabbitMQ, the others' to the store."""

    def __init__(self, rabbit: RabbitPlane, store: Accepts) -> None:
        self._rabbit = rabbit
        self._store = store

    async def accept(
        self,
        broker: BrokerRoute,
        event: WireEvent,
        headers: Headers,
        *,
        trace: SpanContext | None = None,
    ) -> object:
        if self._rabbit.serves(broker.key):
            return await self._rabbit.accept(broker, event, headers)
        return await self._store.accept(broker, event, headers, trace=trace)
