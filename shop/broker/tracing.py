"""The broker's own spans: an event received, each delivery attempt, each dead-letter post.

W3C trace context (https://www.w3.org/TR/trace-context/) ties them to the services' spans:

- an event's receive span is a child of the span its `traceparent` extension names (the
  producer's), else of the request's `traceparent` header, else the root of a new trace;
- each delivery attempt's span is a child of the receive span, and the attempt carries it in
  the W3C `traceparent` HTTP header, so a subscriber whose span takes its parent from the
  header is the attempt's child. The event's `traceparent` extension goes on unchanged: the
  CloudEvents Distributed Tracing extension carries the trace context where the event started,
  never that of each hop, which the transport's own header carries (docs/broker.md, "Traces").

Spans are gathered on the event loop and handed to the store's writer in batches, every
FLUSH_SECONDS or every MAX_BATCH spans: the hot path only builds a row per span (its
attributes as JSON text from cached parts, see `_attempt_head`). The attributes follow
OpenTelemetry's semantic conventions for messaging and HTTP, plus the CloudEvents ones
(`cloudevents.*`) and the broker's (`shop.*`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from shop.broker.envelope import Envelope
from shop.broker.outcomes import Attempt, Outcome, Phase
from shop.broker.spans import Span

SERVICE = "broker"
# Small batches, often: the writer commits each after the events of its batch, and a large one
# would hold back the next batch's 202s.
FLUSH_SECONDS = 0.05
MAX_BATCH = 200
TRACEPARENT = "traceparent"
# version-traceid-parentid-flags; a later version may append fields after a dash.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_MESSAGING_SYSTEM = "knative"
# An attempt's outcome that moves the event to a dead letter (a sink, or the local table).
_DEAD_LETTERING = frozenset({Outcome.FAILED, Outcome.KEPT, Outcome.DEAD_LETTERED})

SpanSink = Callable[[list[tuple[object, ...]]], None]


class SpanContext(NamedTuple):
    """A span's identity as W3C trace context carries it."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: object) -> SpanContext | None:
    """The span a `traceparent` value names; None when it is absent or invalid (then W3C says
    start a new trace)."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    return SpanContext(trace_id, span_id, flags)


class Receiving(NamedTuple):
    """An event's receive span, begun before the event is stored (its deliveries need its id)."""

    context: SpanContext
    parent_span_id: str | None
    start_unix_nano: int


class BrokerTracer:
    """Builds the broker's spans and hands them to `sink` (the store's writer) in batches."""

    def __init__(
        self,
        sink: SpanSink,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._clock = clock
        self._random = random.Random(os.urandom(16))
        self._gathered: list[tuple[object, ...]] = []
        self._timer: asyncio.TimerHandle | None = None

    # ids
    def _span_id(self) -> str:
        return f"{self._random.getrandbits(64) or 1:016x}"

    def _trace_id(self) -> str:
        return f"{self._random.getrandbits(128) or 1:032x}"

    def child_of(self, parent: SpanContext | None) -> SpanContext:
        """A new span's context: in `parent`'s trace, else in a new one."""
        if parent is None:
            return SpanContext(self._trace_id(), self._span_id())
        return SpanContext(parent.trace_id, self._span_id(), parent.flags)

    # the receive span
    def begin_receive(
        self,
        attributes: Mapping[str, object],
        fallback: str | None = None,
        started: int | None = None,
    ) -> Receiving:
        """Start an event's receive span (at `started`, epoch ns; default now): parent from its
        `traceparent` extension, else from `fallback` (the request's `traceparent` header, or
        the attempt a reply answered)."""
        parent = parse_traceparent(attributes.get(TRACEPARENT))
        if parent is None:
            parent = parse_traceparent(fallback)
        context = self.child_of(parent)
        return Receiving(
            context,
            None if parent is None else parent.span_id,
            time.time_ns() if started is None else started,
        )

    def received(
        self,
        receiving: Receiving,
        broker: str,
        attributes: Mapping[str, object],
        seq: int | None,
        url: str,
    ) -> None:
        """The event is stored as `seq` (None: a RabbitMQBroker's journal could not take it):
        record its receive span."""
        context = receiving.context
        event_id = _quote(str(attributes.get("id", "")))
        name, head = _receive_head(broker, url)
        parts = [
            head,
            ',"messaging.message.id":',
            event_id,
            ',"cloudevents.event_id":',
            event_id,
            ',"cloudevents.event_source":',
            _quote(str(attributes.get("source", ""))),
            ',"cloudevents.event_type":',
            _quote(str(attributes.get("type", ""))),
        ]
        subject = attributes.get("subject")
        if subject is not None:
            parts += (',"cloudevents.event_subject":', _quote(str(subject)))
        if seq is not None:
            parts += (',"shop.event.seq":', str(seq))
        parts.append("}")
        self._add(
            (
                context.trace_id,
                context.span_id,
                receiving.parent_span_id,
                name,
                SERVICE,
                "server",
                receiving.start_unix_nano,
                time.time_ns(),
                "unset",
                None,
                "".join(parts),
                seq,
                self._clock(),
            )
        )

    # attempts
    def attempt_context(self, envelope: Envelope) -> SpanContext:
        """The span of the next attempt to deliver `envelope`: a child of its receive span (of
        the producer's span for a delivery resumed after a restart, whose receive span id the
        broker no longer holds)."""
        return self.child_of(_parent_of(envelope))

    def attempted(self, attempt: Attempt, outcome: Outcome) -> None:
        """Record the span of a finished attempt (to the subscriber or the dead-letter sink)."""
        context = attempt.span
        if context is None:
            return
        envelope = attempt.envelope
        parent = _parent_of(envelope)
        result = attempt.result
        event = envelope.event.attributes
        event_id = _quote(str(event.get("id", "")))
        name, head = _attempt_head(attempt.trigger, attempt.phase, attempt.url)
        parts = [
            head,
            ',"messaging.message.id":',
            event_id,
            ',"cloudevents.event_id":',
            event_id,
            ',"cloudevents.event_type":',
            _quote(str(event.get("type", ""))),
            ',"shop.delivery.attempt":',
            str(attempt.number),
            ',"shop.outcome":"',
            outcome.value,
            '","shop.dead_lettered":',
            "true" if outcome in _DEAD_LETTERING else "false",
            ',"shop.event.seq":',
            str(envelope.seq),
        ]
        if result.status is not None:
            parts += (',"http.response.status_code":', str(result.status))
        ok = result.ok
        if not ok:
            parts += (',"error.type":', _quote(_error_type(result.status, result.error)))
        parts.append("}")
        start = int(attempt.started * 1e9)
        self._add(
            (
                context.trace_id,
                context.span_id,
                None if parent is None else parent.span_id,
                name,
                SERVICE,
                "client",
                start,
                start + int(attempt.seconds * 1e9),
                "unset" if ok else "error",
                None if ok else result.error,
                "".join(parts),
                envelope.seq,
                self._clock(),
            )
        )

    # the services' spans (OTLP)
    def received_spans(self, spans: Sequence[Span]) -> None:
        """Store spans a service exported (they belong to no event: pruned by age)."""
        now = self._clock()
        for span in spans:
            self._add(span.row(now))

    # batching
    def _add(self, row: tuple[object, ...]) -> None:
        self._gathered.append(row)
        if len(self._gathered) >= self._max_batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_seconds, self.flush)

    def flush(self) -> None:
        """Hand what has gathered to the sink now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._gathered:
            rows, self._gathered = self._gathered, []
            self._sink(rows)


def _parent_of(envelope: Envelope) -> SpanContext | None:
    """The parent of an event's attempt spans: its receive span, else the producer's."""
    return envelope.trace or parse_traceparent(envelope.event.attributes.get(TRACEPARENT))


# The broker's spans are the hot path's: their attributes are written as JSON text here, from
# parts fixed per broker or per Trigger (cached) and values quoted with json's own C quoting,
# several times cheaper than json.dumps of a dict. The names are OpenTelemetry's semantic
# conventions (messaging, HTTP, CloudEvents) and the broker's own (`shop.*`).
_quote: Callable[[str], str] = json.encoder.encode_basestring


@functools.cache
def _receive_head(broker: str, url: str) -> tuple[str, str]:
    """The name of a receive span of `broker`, and its attributes' fixed part (JSON, open)."""
    return f"{broker} receive", (
        f'{{"messaging.system":"{_MESSAGING_SYSTEM}","messaging.operation.type":"receive",'
        f'"messaging.operation.name":"receive","messaging.destination.name":{_quote(broker)},'
        f'"http.request.method":"POST","http.response.status_code":202,"url.full":{_quote(url)}'
    )


@functools.cache
def _attempt_head(trigger: str, phase: Phase, url: str) -> tuple[str, str]:
    """The name of an attempt span of `trigger` in `phase` to `url`, and its attributes' fixed
    part (JSON, open)."""
    operation = "deliver" if phase is Phase.SUBSCRIBER else "dead-letter"
    return f"{trigger} {operation}", (
        f'{{"messaging.system":"{_MESSAGING_SYSTEM}","messaging.operation.type":"send",'
        f'"messaging.operation.name":"{operation}","messaging.destination.name":'
        f'{_quote(trigger)},"shop.trigger":{_quote(trigger)},"shop.delivery.target":'
        f'"{phase.value}","http.request.method":"POST","url.full":{_quote(url)}'
    )


def _error_type(status: int | None, error: str | None) -> str:
    """OpenTelemetry's `error.type`: the status code as text, else what kept the answer away."""
    if status is not None:
        return str(status)
    if error is not None and "no answer within" in error:
        return "timeout"
    return "connection_error"
