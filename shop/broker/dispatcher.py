"""Delivery to each trigger's subscriber: bounded concurrency, retries, back-off, dead letters.

Each trigger has a queue and `concurrency` workers. A delivery has two phases: to the subscriber,
then, if that fails for good and the trigger has a dead-letter sink, to the sink. Every attempt,
in either phase, ends the same way: done, retried later, on to the dead-letter phase, or kept in
the local dead-letter table. A failed attempt does not hold a worker while it waits: the retry
is scheduled on the loop's timer and re-queued when due. The rules (what is retried, how long to
wait, the dead-letter extensions) come from `wire.knative`.

With sender identity on, every attempt to a destination that names an audience carries a token
of the Trigger's subject for it, and a subscriber's reply is authorized as if the Trigger had
posted it to the broker's ingress (Knative's broker filter sends it there with the Trigger's
token); a refused reply fails the attempt with 403, which is not retried.

An ordered Trigger of a Kafka broker (`ordering.py`) sends only the head of each partition to
the workers; the next of that partition follows once the head is finished.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

from shop.broker.acceptance import Acceptor, Refused
from shop.broker.admission import TTL_ATTRIBUTE
from shop.broker.authorization import Authorization
from shop.broker.envelope import Envelope
from shop.broker.http_client import encode_headers
from shop.broker.metrics import BrokerMetrics
from shop.broker.ordering import PartitionOrder, Partitions
from shop.broker.outcomes import Attempt, Failure, OutcomeRecorder, Phase
from shop.broker.routes import BrokerRoute, Routes, TriggerRoute
from shop.broker.sender import AttemptResult, Sender
from shop.broker.store import DeliveryState, PendingDelivery, State, StoreError, Unstorable
from shop.broker.tokens import TokenMinter
from shop.broker.tracing import BrokerTracer, SpanContext
from wire.http_binding import WireEvent
from wire.knative import is_retryable, next_wait
from wire.oidc.subjects import trigger_subject

log = logging.getLogger(__name__)
# Looked up once: an Enum member costs a few hundred nanoseconds to look up on Python 3.11.
_SUBSCRIBER, _DEAD_LETTER = Phase.SUBSCRIBER, Phase.DEAD_LETTER


@dataclass(slots=True)
class Delivery:
    """One event on its way to one trigger: the attempts made in its phase, and, once the
    subscriber has failed for good, why (which puts it in the dead-letter phase)."""

    envelope: Envelope
    attempts: int = 0
    failure: Failure | None = None

    @property
    def phase(self) -> Phase:
        return _SUBSCRIBER if self.failure is None else _DEAD_LETTER

    @classmethod
    def resumed(cls, envelope: Envelope, state: DeliveryState) -> Delivery:
        """The delivery a previous run left unfinished in `state`."""
        failure = None
        if state.state == State.DEAD_LETTERING:
            failure = Failure(
                state.error_destination or "", state.error_status, state.error_data or b""
            )
        return cls(envelope, state.attempts, failure)


@dataclass(frozen=True)
class DeliveryIdentity:
    """Sender identity on the delivery side: the tokens attempts carry, the replies' check."""

    minter: TokenMinter
    authorization: Authorization


class Scheduled(NamedTuple):
    """A delivery to queue again, after `delay` seconds."""

    delivery: Delivery
    delay: float


class TriggerDispatcher:
    """The queue and workers of one trigger."""

    def __init__(
        self,
        route: TriggerRoute,
        broker: BrokerRoute,
        *,
        sender: Sender,
        acceptor: Acceptor,
        recorder: OutcomeRecorder,
        default_timeout: float,
        count: Callable[[int], None],
        identity: DeliveryIdentity | None = None,
        order: PartitionOrder[Delivery] | None = None,
        tracer: BrokerTracer | None = None,
    ) -> None:
        self.route = route
        self._tracer = tracer
        self._count = count
        self._broker = broker
        self._sender = sender
        self._acceptor = acceptor
        self._recorder = recorder
        self._timeout = route.delivery.timeout or default_timeout
        self._structured = route.delivery.format == "json"
        self._trigger_headers = encode_headers(
            (("Prefer", "reply"), ("Kn-Namespace", route.namespace))
        )
        self._identity = identity
        self._subject = trigger_subject(route.namespace, route.name)
        self._order = order
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"deliver {self.route.key} #{n}")
            for n in range(self.route.concurrency)
        ]

    async def stop(self) -> None:
        """Stop delivering; what is unfinished stays pending in the store for the next start."""
        for timer in self._timers:
            timer.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def submit(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Take on a new delivery, now or after `delay` seconds."""
        self._count(1)
        if self._order is not None and not self._order.admit(delivery, delivery.envelope, delay):
            return  # behind an earlier event of its partition
        self._schedule(Scheduled(delivery, delay))

    def _schedule(self, scheduled: Scheduled) -> None:
        delivery, delay = scheduled
        if delay <= 0:
            self._queue.put_nowait(delivery)
            return
        timer: asyncio.TimerHandle

        def due() -> None:
            self._timers.discard(timer)
            self._queue.put_nowait(delivery)

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    async def _work(self) -> None:
        """Take the next due delivery, make one attempt, and act on its outcome; forever."""
        while True:
            delivery = await self._queue.get()
            try:
                following = self._conclude(delivery, await self._attempt(delivery))
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not lose the event: it stays pending in the store for the next start
                # (and, for an ordered Trigger, the rest of its partition waits for it).
                log.exception(
                    "delivery of event %s to %s broke", delivery.envelope.seq, self.route.key
                )
                continue
            if following is not None:
                self._schedule(following)
                continue
            self._count(-1)
            if self._order is not None:
                after = self._order.release(delivery.envelope)
                if after is not None:
                    self._schedule(Scheduled(*after))

    async def _attempt(self, delivery: Delivery) -> Attempt:
        phase = delivery.phase
        url, headers, body = self._request(delivery)
        span = None
        if self._tracer is not None:
            # The attempt's own span goes in the W3C header; the event's `traceparent`
            # extension stays the producer's (tracing.py).
            span = self._tracer.attempt_context(delivery.envelope)
            headers += b"traceparent: " + span.traceparent.encode() + b"\r\n"
        started = time.time()
        clock = time.perf_counter()
        result = await self._sender.post(
            url, headers, body, self._timeout, expect_reply=phase is _SUBSCRIBER
        )
        reply_seq = None
        destination = url
        if result.ok and result.reply is not None:
            reply_seq, result = await self._route_reply(delivery.envelope, result, span)
            if not result.ok:
                destination = self._broker.url
        return Attempt(
            delivery.envelope,
            self.route.key,
            phase,
            delivery.attempts + 1,
            url,
            started,
            time.perf_counter() - clock,
            result,
            destination,
            reply_seq,
            span,
        )

    def _request(self, delivery: Delivery) -> tuple[str, bytes, bytes]:
        """URL, encoded headers and body of the delivery's next attempt. The subscriber gets the
        event as it came, the sink as stored with the dead-letter extensions; both requests
        carry the trigger's headers."""
        envelope = delivery.envelope
        route = self.route
        if delivery.failure is None:
            url, audience = route.subscriber_url, route.subscriber_audience
            headers, body = envelope.request(self._structured)
        else:
            assert route.dead_letter_url is not None
            url, audience = route.dead_letter_url, route.dead_letter_audience
            extensions = delivery.failure.extensions()
            headers, body = envelope.dead_letter_request(extensions, self._structured)
        headers += self._trigger_headers
        if self._identity is not None and audience is not None:
            headers += self._identity.minter.header(self._subject, audience)
        return url, headers, body

    async def _route_reply(
        self, envelope: Envelope, result: AttemptResult, span: SpanContext | None = None
    ) -> tuple[int | None, AttemptResult]:
        """Send a subscriber's reply back into the broker, as Knative's reply destination does."""
        assert result.reply is not None
        # The filter puts the hop counter back on the reply; the ingress then takes one off.
        reply = result.reply.with_attributes(**{TTL_ATTRIBUTE: envelope.ttl})
        if self._identity is not None:
            refused = self._authorize_reply(reply)
            if refused is not None:
                return None, refused
        tracer = self._tracer
        receiving = None
        if tracer is not None:
            receiving = tracer.begin_receive(
                reply.attributes, None if span is None else span.traceparent
            )
        try:
            stored = await self._acceptor.accept(
                self._broker,
                reply,
                result.reply_headers,
                parent=(envelope.seq, self.route.key),
                trace=None if receiving is None else receiving.context,
            )
        except Refused as refused:
            body = _json_body(refused.to_json())
            error = f"the broker refused the subscriber's reply: {refused.message}"
            return None, AttemptResult(refused.status, body, error=error)
        except Unstorable as error:
            return None, AttemptResult(400, str(error).encode(), error=str(error))
        except StoreError as error:
            return None, AttemptResult(
                503, str(error).encode(), error=f"storing the reply failed: {error}"
            )
        if tracer is not None and receiving is not None:
            tracer.received(
                receiving, self._broker.key, stored.event.attributes, stored.seq, self._broker.url
            )
        return stored.seq, result

    def _authorize_reply(self, reply: WireEvent) -> AttemptResult | None:
        """The failed result of a reply the broker's authorization refuses (None: allowed)."""
        assert self._identity is not None
        reason = self._identity.authorization.reply_refusal(
            self._broker.key, self.route.key, self._subject, reply.attributes
        )
        if reason is None:
            return None
        body = _json_body(Refused(403, reason).to_json())
        return AttemptResult(
            403, body, error=f"the broker refused the subscriber's reply: {reason}"
        )

    def _conclude(self, delivery: Delivery, attempt: Attempt) -> Scheduled | None:
        """Record the attempt's outcome; what to queue next, or None: the delivery is finished."""
        result = attempt.result
        if result.ok:
            self._recorder.succeeded(attempt)
            return None
        wait = self._retry_wait(attempt.number, result)
        if wait is not None:
            self._recorder.retry(attempt, wait, delivery.failure)
            return Scheduled(replace(delivery, attempts=attempt.number), wait)
        if delivery.failure is not None:
            reason = f"the dead-letter sink failed too ({result.error})"
            self._recorder.kept(attempt, delivery.failure, reason)
            return None
        failure = Failure(attempt.destination, result.status, result.body)
        why = "not retryable" if not is_retryable(result.status) else "no retries left"
        if self.route.dead_letter_url is None:
            reason = f"delivery failed ({why}) and the trigger has no dead-letter sink"
            self._recorder.kept(attempt, failure, reason)
            return None
        message = f"delivery failed ({why}); sending to the dead-letter sink"
        self._recorder.failed(attempt, failure, message)
        return Scheduled(Delivery(delivery.envelope, failure=failure), 0.0)

    def _retry_wait(self, attempt_number: int, result: AttemptResult) -> float | None:
        """Seconds until the next attempt, or None when this failure is final."""
        spec = self.route.delivery
        if not is_retryable(result.status) or attempt_number > (spec.retry or 0):
            return None
        return next_wait(spec, attempt_number, result.status, result.retry_after, datetime.now(UTC))


class Dispatcher:
    """Every trigger's dispatcher, and the hand-off from the store's commits to them."""

    def __init__(
        self,
        routes: Routes,
        sender: Sender,
        metrics: BrokerMetrics,
        default_timeout: float,
        identity: DeliveryIdentity | None = None,
        *,
        tracer: BrokerTracer | None = None,
    ) -> None:
        self._metrics = metrics
        self._identity = identity
        self._tracer = tracer
        self._triggers: dict[str, TriggerDispatcher] = {}
        self._routes = routes
        self._sender = sender
        self._default_timeout = default_timeout
        self._backlog: dict[str, int] = {}
        self._unfinished = 0
        #: Called whenever the number of unfinished deliveries changes (backpressure).
        self.on_load: Callable[[], None] | None = None

    def _count(self, trigger: str, delta: int) -> None:
        """The one place where unfinished deliveries are counted: taken on (+1), finished (-1)."""
        self._backlog[trigger] += delta
        self._unfinished += delta
        if self.on_load is not None:
            self.on_load()

    def start(self, acceptor: Acceptor, recorder: OutcomeRecorder) -> None:
        """Start every trigger's workers; replies go back in through `acceptor`."""
        for broker in self._routes.brokers.values():
            orders = _partition_orders(broker)
            for route in broker.triggers:
                trigger = TriggerDispatcher(
                    route,
                    broker,
                    sender=self._sender,
                    acceptor=acceptor,
                    recorder=recorder,
                    default_timeout=self._default_timeout,
                    count=functools.partial(self._count, route.key),
                    identity=self._identity,
                    order=orders.get(route.key),
                    tracer=self._tracer,
                )
                trigger.start()
                self._triggers[route.key] = trigger
                self._backlog[route.key] = 0

    async def stop(self) -> None:
        await asyncio.gather(*(trigger.stop() for trigger in self._triggers.values()))

    def backlog(self) -> Mapping[str, int]:
        """Unfinished deliveries per trigger."""
        return dict(self._backlog)

    def unfinished(self) -> int:
        """Unfinished deliveries of every trigger: what the dispatcher holds in memory."""
        return self._unfinished

    def committed(self, accepted: Iterable[tuple[Envelope, tuple[str, ...]]]) -> None:
        """Start delivering events the store has just committed."""
        for envelope, triggers in accepted:
            for key in triggers:
                self._metrics.accepted(key)
                self._triggers[key].submit(Delivery(envelope))

    def resume(self, pending: Iterable[PendingDelivery]) -> int:
        """Take up deliveries left unfinished by the previous run; returns how many."""
        count = 0
        now = time.time()
        for item in pending:
            state = item.state
            trigger = self._triggers.get(state.trigger)
            if trigger is None:
                log.warning(
                    "event %s is pending for trigger %s, which no longer exists; left in the store",
                    item.envelope.seq,
                    state.trigger,
                )
                continue
            delay = 0.0 if state.next_at is None else max(state.next_at - now, 0.0)
            trigger.submit(Delivery.resumed(item.envelope, state), delay)
            count += 1
        return count


def _partition_orders(broker: BrokerRoute) -> dict[str, PartitionOrder[Delivery]]:
    """The partition order of each ordered Trigger of `broker`, over the topic they share."""
    ordered = [route for route in broker.triggers if route.ordered]
    if not ordered:
        return {}
    assert broker.partitions is not None  # routes order only the Triggers of a Kafka broker
    partitions = Partitions(broker.partitions)
    for route in ordered:
        log.info(
            "trigger %s: ordered delivery, one event at a time in each of the %d partitions of"
            " broker %s",
            route.key,
            partitions.count,
            broker.key,
        )
    return {route.key: PartitionOrder(partitions) for route in ordered}


def _json_body(document: object) -> bytes:
    return json.dumps(document).encode()
