"""One dispatcher per Trigger queue (and per dead-letter queue), as eventing-rabbitmq's.

Read from `pkg/dispatcher/dispatcher.go`: prefetch 100; `parallelism` workers take messages in
the order RabbitMQ hands them out (one worker keeps FIFO order); the retries happen inside the
dispatcher with the delivery spec's back-off, the message unacknowledged meanwhile. A message
is acknowledged only once its outcome is final:

- delivered (2xx; a reply must be accepted by the broker: published and confirmed);
- a status that is not retryable (a 400, a 403): taken as success, as upstream does, where
  the MT broker would dead-letter it;
- every attempt failed: published (with confirms) to the trigger's, else the broker's
  dead-letter exchange with `knativeerrordest` and `knativeerrorcode`, or, with no
  dead-letter exchange, dropped with a warning.

A dead-letter dispatcher posts what its dead-letter queue holds to the sink the same way; when
the sink fails too the event is dropped with a warning. A message whose outcome is not final
when the process stops stays unacknowledged, and RabbitMQ hands it out again: at least once.

With sender identity on (a project addition: eventing-rabbitmq has no OIDC), an attempt to a
destination that names an audience carries a token of the Trigger's subject, and a reply is
authorized as if the Trigger had sent it (`Authorization.reply_refusal`), as the store's
dispatcher does; a refused reply fails the attempt with 403, which this class acks.

Every attempt goes to the broker's journal (`journal.py`) under the seq the message carries;
the final one with the delivery's state: `delivered` (a status not retried too, its attempt's
outcome `acked_not_retryable`), `dead_lettered`, or `dropped`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue

from shop.broker.acceptance import Refused
from shop.broker.admission import TTL_ATTRIBUTE
from shop.broker.dispatcher import DeliveryIdentity
from shop.broker.envelope import encode_request
from shop.broker.http_client import encode_headers
from shop.broker.metrics import BrokerMetrics
from shop.broker.rabbitmq.journal import (
    SEQ_HEADER,
    TRIGGER_HEADER,
    Attempt,
    RabbitJournal,
    seq_of,
)
from shop.broker.rabbitmq.message import from_message, to_message, trace_headers
from shop.broker.sender import AttemptResult, Sender
from shop.broker.store import State
from wire.http_binding import WireEvent
from wire.knative import DeliverySpec, dead_letter_extensions, is_retryable, next_wait
from wire.oidc.subjects import trigger_subject

log = logging.getLogger("shop.broker.delivery")

PREFETCH = 100

#: Takes a subscriber's reply into the broker (the parent's journal seq and trigger); its seq.
AcceptReply = Callable[[WireEvent, tuple[int, str] | None], Awaitable[int | None]]


@dataclass(frozen=True)
class Target:
    """What a dispatcher posts to and how: the trigger (key), the URL, the retry rules."""

    trigger: str
    broker: str
    namespace: str
    url: str
    #: The OIDC audience the destination accepts (None: no token).
    audience: str | None
    retry: int
    delivery: DeliverySpec
    timeout: float
    parallelism: int
    #: For a trigger queue: where failures go (None: dropped). None for a dead-letter queue.
    dead_letter_exchange: AbstractExchange | None = None
    dead_letter: bool = False


class QueueDispatcher:
    """Consumes one queue with `parallelism` workers and posts each event to its target."""

    def __init__(
        self,
        target: Target,
        sender: Sender,
        metrics: BrokerMetrics,
        journal: RabbitJournal,
        accept_reply: AcceptReply,
        *,
        identity: DeliveryIdentity | None = None,
    ) -> None:
        self.target = target
        self._identity = identity
        self._sender = sender
        self._metrics = metrics
        self._journal = journal
        self._accept_reply = accept_reply
        self._queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._headers = encode_headers((("Prefer", "reply"), ("Kn-Namespace", target.namespace)))
        self.in_flight = 0

    async def start(self, queue: AbstractQueue) -> None:
        """Consume `queue` (its channel has the prefetch set) and start the workers."""
        self._workers = [
            asyncio.create_task(self._work(), name=f"rabbitmq {self.target.trigger} #{n}")
            for n in range(self.target.parallelism)
        ]
        await queue.consume(self._received, no_ack=False)

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _received(self, message: AbstractIncomingMessage) -> None:
        self.in_flight += 1
        if not self.target.dead_letter and not message.redelivered:
            self._metrics.accepted(self.target.trigger)
        self._queue.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not acknowledged: RabbitMQ hands it out again once the channel closes.
                log.exception(
                    "delivery from %s broke; the message stays unacked", self.target.trigger
                )
            finally:
                self.in_flight -= 1

    async def _dispatch(self, message: AbstractIncomingMessage) -> None:
        event = from_message(message.headers, message.body)
        target = self.target
        seq = seq_of(message.headers)
        # A broker's dead-letter queue gathers every trigger's failures; the message says whose.
        trigger = str(message.headers.get(TRIGGER_HEADER) or target.trigger)
        trace = encode_headers(trace_headers(message.headers))
        result, last = await self._deliver(event, seq, trigger, trace)
        fields = _fields(event, target, result, last.number)
        if result.ok:
            if target.dead_letter:
                self._metrics.dead_lettered(target.trigger, "dead_letter_sink")
            else:
                self._metrics.delivered(target.trigger, _age(event))
            outcome = State.DEAD_LETTERED if target.dead_letter else State.DELIVERED
            log.info("%s (%s)", outcome, target.url, extra={**fields, "outcome": str(outcome)})
            self._journal.finished(seq, last._replace(outcome=str(outcome)), outcome)
        elif result.status is not None and not is_retryable(result.status):
            log.warning(
                "the destination answered %s, which is not retried: acked as delivered, as "
                "eventing-rabbitmq does (%s)",
                result.status,
                target.url,
                extra={**fields, "outcome": "acked_not_retryable"},
            )
            state = State.DEAD_LETTERED if target.dead_letter else State.DELIVERED
            self._journal.finished(seq, last._replace(outcome="acked_not_retryable"), state)
        elif target.dead_letter:
            log.warning(
                "the dead-letter sink failed too; the event is dropped (%s)",
                target.url,
                extra={**fields, "outcome": "dropped"},
            )
            self._journal.finished(seq, last._replace(outcome="dropped"), State.DROPPED)
        else:
            await self._dead_letter(event, result, fields, seq, last)
        await _ack(message)

    async def _deliver(
        self, event: WireEvent, seq: int | None, trigger: str, trace: bytes
    ) -> tuple[AttemptResult, Attempt]:
        """Attempt until success, a status that is not retried, or the last retry; the result
        and the journal's record of the last attempt (its outcome for the caller to set)."""
        target = self.target
        ttl = event.attributes.get(TTL_ATTRIBUTE)
        headers, body = encode_request(event.with_attributes(**{TTL_ATTRIBUTE: None}), (), False)
        headers += self._headers + trace
        number = 0
        while True:
            number += 1
            started, clock = time.time(), time.perf_counter()
            result = await self._sender.post(
                target.url,
                headers + self._token(trigger),
                body,
                target.timeout,
                expect_reply=not target.dead_letter,
            )
            reply_seq = None
            if result.ok and result.reply is not None:
                reply_seq, result = await self._take_reply(result.reply, ttl, seq, trigger)
            seconds = time.perf_counter() - clock
            if not target.dead_letter:
                self._metrics.attempt(target.trigger, seconds)
            attempt = Attempt(
                trigger,
                number,
                "dead_letter_sink" if target.dead_letter else "subscriber",
                target.url,
                started,
                seconds,
                result.status,
                "retry",
                result.error,
                reply_seq,
            )
            if result.ok or not is_retryable(result.status) or number > target.retry:
                return result, attempt
            self._journal.attempt(seq, attempt)
            self._metrics.retried(target.trigger)
            wait = next_wait(
                target.delivery, number, result.status, result.retry_after, datetime.now(UTC)
            )
            log.info(
                "attempt failed; retry in %.3fs (%s)",
                wait,
                target.url,
                extra={**_fields(event, target, result, number), "outcome": "retry"},
            )
            await asyncio.sleep(wait)

    def _token(self, trigger: str) -> bytes:
        """The header line of the token of `trigger` (`namespace/name`) for the target's
        audience; empty without sender identity or an audience."""
        if self._identity is None or self.target.audience is None:
            return b""
        namespace, _, name = trigger.partition("/")
        return self._identity.minter.header(trigger_subject(namespace, name), self.target.audience)

    async def _take_reply(
        self, reply: WireEvent, ttl: object, seq: int | None, trigger: str
    ) -> tuple[int | None, AttemptResult]:
        """Take the subscriber's reply into the broker (its hop counter put back), as the
        store's dispatcher does: authorized, published and confirmed, journaled as a reply to
        `seq`."""
        if isinstance(ttl, int | str):
            reply = reply.with_attributes(**{TTL_ATTRIBUTE: ttl})
        try:
            if self._identity is not None:
                namespace, _, name = trigger.partition("/")
                reason = self._identity.authorization.reply_refusal(
                    self.target.broker, trigger, trigger_subject(namespace, name), reply.attributes
                )
                if reason is not None:
                    raise Refused(403, reason)
            reply_seq = await self._accept_reply(reply, None if seq is None else (seq, trigger))
        except Refused as refused:
            error = f"the broker refused the subscriber's reply: {refused.message}"
            return None, AttemptResult(refused.status, refused.message.encode(), error=error)
        return reply_seq, AttemptResult(202)

    async def _dead_letter(
        self,
        event: WireEvent,
        result: AttemptResult,
        fields: dict[str, object],
        seq: int | None,
        last: Attempt,
    ) -> None:
        target = self.target
        if target.dead_letter_exchange is None:
            log.warning(
                "delivery failed and there is no dead-letter sink; the event is dropped (%s)",
                target.url,
                extra={**fields, "outcome": "dropped"},
            )
            self._journal.finished(seq, last._replace(outcome="dropped"), State.DROPPED)
            return
        extensions = dead_letter_extensions(target.url, result.status, result.body)
        extra: dict[str, str | int | bool] = {
            "knativeerrordest": extensions["knativeerrordest"],
            "knativeerrorcode": int(extensions["knativeerrorcode"]),
            TRIGGER_HEADER: last.trigger,
        }
        if seq is not None:
            extra[SEQ_HEADER] = seq
        # Confirmed before the ack: a nack or a lost connection raises, the message stays.
        await target.dead_letter_exchange.publish(to_message(event, extra), routing_key="")
        log.warning(
            "delivery failed; sent to the dead-letter exchange %s (%s)",
            target.dead_letter_exchange.name,
            target.url,
            extra={**fields, "outcome": "failed"},
        )
        self._journal.attempt(seq, last._replace(outcome="failed"))


async def _ack(message: AbstractIncomingMessage) -> None:
    """Send the message's ack without waiting for the connection's writer to write it out.

    `message.ack()` waits for that, which costs the one worker of a queue two turns of the
    event loop per message; the wait promises nothing more (written is not received): a lost
    ack means a redelivery either way.
    """
    if message.delivery_tag is not None:
        await message.channel.basic_ack(delivery_tag=message.delivery_tag, wait=False)


def _age(event: WireEvent) -> float:
    arrival = event.get("knativearrivaltime")
    if arrival is None:
        return 0.0
    try:
        return max(time.time() - datetime.fromisoformat(arrival).timestamp(), 0.0)
    except ValueError:
        return 0.0


def _fields(
    event: WireEvent, target: Target, result: AttemptResult, attempts: int
) -> dict[str, object]:
    return {
        "event_id": event.get("id"),
        "type": event.get("type"),
        "source": event.get("source"),
        "trigger": target.trigger,
        "attempt": attempts,
        "status": result.status,
        "destination": "dead_letter_sink" if target.dead_letter else "subscriber",
        "error": result.error,
    }
