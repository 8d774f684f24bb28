"""Delivery to each trigger's subscriber: bounded concurrency, retries, back-off, dead letters.

Each trigger has a queue and `concurrency` workers. A failed attempt does not hold a worker
while it waits: the retry is scheduled on the loop's timer and re-queued when due. The rules
(what is retried, how long to wait, the dead-letter extensions) come from `wire.knative`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shop.broker.acceptance import Acceptor, Refused
from shop.broker.admission import TTL_ATTRIBUTE
from shop.broker.envelope import Envelope
from shop.broker.http_client import encode_headers
from shop.broker.metrics import BrokerMetrics
from shop.broker.outcomes import DEAD_LETTER_SINK, SUBSCRIBER, Attempt, OutcomeRecorder
from shop.broker.routes import BrokerRoute, Routes, TriggerRoute
from shop.broker.sender import AttemptResult, Sender
from shop.broker.store import DeliveryState, PendingDelivery, StoreError, Unstorable
from wire.http_binding import WireEvent, to_binary, to_structured
from wire.knative import (
    add_dead_letter_extensions,
    dead_letter_extensions,
    is_retryable,
    next_wait,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a subscriber delivery failed for good: what the dead-letter extensions report."""

    destination: str
    status: int | None
    body: bytes


@dataclass(slots=True)
class Delivery:
    """One event on its way to one trigger's subscriber (or, failing that, its dead-letter sink)."""

    envelope: Envelope
    attempts: int = 0
    failure: Failure | None = None


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
    ) -> None:
        self.route = route
        self._count = count
        self._broker = broker
        self._sender = sender
        self._acceptor = acceptor
        self._recorder = recorder
        self._timeout = route.delivery.timeout or default_timeout
        self._structured = route.delivery.format == "json"
        self._headers = {"Prefer": "reply", "Kn-Namespace": route.namespace}
        self._encoded_headers = encode_headers(self._headers.items())
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()
        self._workers: list[asyncio.Task[None]] = []
        self.unfinished = 0

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
        self.unfinished += 1
        self._count(1)
        self._schedule(delivery, delay)

    def _finished(self) -> None:
        """A delivery reached its final outcome (delivered, dead-lettered or kept)."""
        self.unfinished -= 1
        self._count(-1)

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        if delay <= 0:
            self._queue.put_nowait(delivery)
            return
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle

        def due() -> None:
            self._timers.discard(timer)
            self._queue.put_nowait(delivery)

        timer = loop.call_later(delay, due)
        self._timers.add(timer)

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                if delivery.failure is None:
                    await self._to_subscriber(delivery)
                else:
                    await self._to_dead_letter_sink(delivery, delivery.failure)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not lose the event: it stays pending in the store for the next start.
                log.exception(
                    "delivery of event %s to %s broke", delivery.envelope.seq, self.route.key
                )

    async def _to_subscriber(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        url = self.route.subscriber_url
        headers, body = envelope.request(self._structured)
        started = time.time()
        clock = time.perf_counter()
        result = await self._sender.post(
            url, headers + self._encoded_headers, body, self._timeout, expect_reply=True
        )
        reply_seq = None
        failed_at = url
        if result.ok and result.reply is not None:
            reply_seq, result = await self._route_reply(envelope, result)
            if not result.ok:
                failed_at = self._broker.url
        attempt = Attempt(
            envelope,
            self.route.key,
            delivery.attempts + 1,
            SUBSCRIBER,
            url,
            started,
            time.perf_counter() - clock,
            result,
        )
        if result.ok:
            self._finished()
            self._recorder.delivered(attempt, reply_seq)
            return
        self._failed(delivery, attempt, failed_at)

    async def _route_reply(
        self, envelope: Envelope, result: AttemptResult
    ) -> tuple[int | None, AttemptResult]:
        """Send a subscriber's reply back into the broker, as Knative's reply destination does."""
        assert result.reply is not None
        # The filter puts the hop counter back on the reply; the ingress then takes one off.
        reply = result.reply.with_attributes(**{TTL_ATTRIBUTE: envelope.ttl})
        try:
            stored = await self._acceptor.accept(
                self._broker, reply, result.reply_headers, parent=(envelope.seq, self.route.key)
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
        return stored.seq, result

    def _failed(self, delivery: Delivery, attempt: Attempt, destination: str) -> None:
        """Retry the subscriber if Knative would, else hand the event to the dead-letter sink."""
        result = attempt.result
        envelope = delivery.envelope
        wait = self._retry_wait(attempt.number, result)
        if wait is not None:
            delivery.attempts = attempt.number
            self._recorder.retry(
                attempt,
                wait,
                DeliveryState(
                    envelope.seq, self.route.key, "pending", attempt.number, time.time() + wait
                ),
            )
            self._schedule(delivery, wait)
            return
        failure = Failure(destination, result.status, result.body)
        why = "not retryable" if not is_retryable(result.status) else "no retries left"
        if self.route.dead_letter_url is None:
            self._finished()
            self._recorder.kept(
                attempt,
                f"delivery failed ({why}) and the trigger has no dead-letter sink",
                destination,
                result.status,
                _error_data(result.body),
            )
            return
        self._recorder.failed(
            attempt,
            DeliveryState(
                envelope.seq,
                self.route.key,
                "dead_lettering",
                0,
                None,
                destination,
                result.status,
                result.body,
            ),
            f"delivery failed ({why}); sending to the dead-letter sink",
        )
        self._schedule(Delivery(envelope, 0, failure), 0.0)

    def _retry_wait(self, attempt_number: int, result: AttemptResult) -> float | None:
        """Seconds until the next attempt, or None when this failure is final."""
        spec = self.route.delivery
        if not is_retryable(result.status) or attempt_number > (spec.retry or 0):
            return None
        return next_wait(spec, attempt_number, result.status, result.retry_after, datetime.now(UTC))

    async def _to_dead_letter_sink(self, delivery: Delivery, failure: Failure) -> None:
        envelope = delivery.envelope
        url = self.route.dead_letter_url
        assert url is not None
        extensions = dead_letter_extensions(failure.destination, failure.status, failure.body)
        event = WireEvent(
            add_dead_letter_extensions(envelope.event.attributes, extensions), envelope.event.data
        )
        headers, body = to_structured(event) if self._structured else to_binary(event)
        started = time.time()
        clock = time.perf_counter()
        encoded = encode_headers((*envelope.headers, *headers.items(), *self._headers.items()))
        result = await self._sender.post(url, encoded, body, self._timeout, expect_reply=False)
        attempt = Attempt(
            envelope,
            self.route.key,
            delivery.attempts + 1,
            DEAD_LETTER_SINK,
            url,
            started,
            time.perf_counter() - clock,
            result,
        )
        if result.ok:
            self._finished()
            self._recorder.dead_lettered(attempt)
            return
        wait = self._retry_wait(attempt.number, result)
        if wait is not None:
            delivery.attempts = attempt.number
            self._recorder.retry(
                attempt,
                wait,
                DeliveryState(
                    envelope.seq,
                    self.route.key,
                    "dead_lettering",
                    attempt.number,
                    time.time() + wait,
                    failure.destination,
                    failure.status,
                    failure.body,
                ),
            )
            self._schedule(delivery, wait)
            return
        self._finished()
        self._recorder.kept(
            attempt,
            f"the dead-letter sink failed too ({result.error})",
            failure.destination,
            failure.status,
            extensions["knativeerrordata"],
        )


class Dispatcher:
    """Every trigger's dispatcher, and the hand-off from the store's commits to them."""

    def __init__(
        self,
        routes: Routes,
        sender: Sender,
        metrics: BrokerMetrics,
        default_timeout: float,
    ) -> None:
        self._metrics = metrics
        self._triggers: dict[str, TriggerDispatcher] = {}
        self._routes = routes
        self._sender = sender
        self._default_timeout = default_timeout
        self._unfinished = 0
        #: Called whenever the number of unfinished deliveries changes (backpressure).
        self.on_load: Callable[[], None] | None = None

    def _count(self, delta: int) -> None:
        self._unfinished += delta
        if self.on_load is not None:
            self.on_load()

    def start(self, acceptor: Acceptor, recorder: OutcomeRecorder) -> None:
        """Start every trigger's workers; replies go back in through `acceptor`."""
        for broker in self._routes.brokers.values():
            for route in broker.triggers:
                trigger = TriggerDispatcher(
                    route,
                    broker,
                    sender=self._sender,
                    acceptor=acceptor,
                    recorder=recorder,
                    default_timeout=self._default_timeout,
                    count=self._count,
                )
                trigger.start()
                self._triggers[route.key] = trigger

    async def stop(self) -> None:
        await asyncio.gather(*(trigger.stop() for trigger in self._triggers.values()))

    def backlog(self) -> Mapping[str, int]:
        """Unfinished deliveries per trigger."""
        return {key: trigger.unfinished for key, trigger in self._triggers.items()}

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
            failure = None
            if state.state == "dead_lettering":
                failure = Failure(
                    state.error_destination or "", state.error_status, state.error_data or b""
                )
            delay = 0.0 if state.next_at is None else max(state.next_at - now, 0.0)
            trigger.submit(Delivery(item.envelope, state.attempts, failure), delay)
            count += 1
        return count


def _json_body(document: object) -> bytes:
    return json.dumps(document).encode()


def _error_data(body: bytes) -> str:
    """`knativeerrordata` for the local dead-letter table: base64, cut as Knative cuts it."""
    return dead_letter_extensions("", None, body)["knativeerrordata"]
