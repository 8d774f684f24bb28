"""What happens when a delivery attempt ends: one log line, the metrics, the journal rows.

Each outcome is recorded in one place so that the log, `/metrics` and the journal always agree.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from shop.broker.envelope import Envelope
from shop.broker.metrics import BrokerMetrics
from shop.broker.sender import AttemptResult
from shop.broker.store import DeliveryState, State, Writer
from wire.knative import dead_letter_extensions

if TYPE_CHECKING:
    from shop.broker.tracing import BrokerTracer, SpanContext

log = logging.getLogger("shop.broker.delivery")


class Outcome(StrEnum):
    """How an attempt ended, as the log's `outcome` key and the journal's `attempts.outcome`."""

    DELIVERED = "delivered"
    RETRY = "retry"  # another attempt follows
    FAILED = "failed"  # the subscriber failed for good; on to the dead-letter sink
    DEAD_LETTERED = "dead_lettered"
    KEPT = "kept"  # in the local dead-letter table


class Phase(StrEnum):
    """Whom a delivery goes to; the value is the attempt's `target`, the log's `destination`."""

    SUBSCRIBER = "subscriber"
    DEAD_LETTER = "dead_letter_sink"

    @property
    def state(self) -> State:
        """The store's state of a delivery in this phase."""
        return State.PENDING if self is Phase.SUBSCRIBER else State.DEAD_LETTERING


# Python 3.11 takes a few hundred nanoseconds to look up an Enum member and as long to format
# one; the per-attempt path below uses these, looked up once.
_SUBSCRIBER = Phase.SUBSCRIBER
_DELIVERED = (Outcome.DELIVERED, State.DELIVERED)
_DEAD_LETTERED = (Outcome.DEAD_LETTERED, State.DEAD_LETTERED)
_TEXT: dict[str, str] = {member: member.value for kind in (Phase, Outcome) for member in kind}


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a subscriber delivery failed for good: what the dead-letter extensions report."""

    destination: str
    status: int | None
    body: bytes

    def extensions(self) -> dict[str, str]:
        return dead_letter_extensions(self.destination, self.status, self.body)


class Attempt(NamedTuple):
    """One finished attempt: in which phase, which one, where, when, how long, how it ended.

    `destination` is where a failure is reported to have happened (`knativeerrordest`): `url`,
    or the broker's ingress when it refused the subscriber's reply, stored as `reply_seq` else.
    A NamedTuple, as `DeliveryState` is, for what it costs to build one per attempt.
    """

    envelope: Envelope
    trigger: str
    phase: Phase
    number: int
    url: str
    started: float
    seconds: float
    result: AttemptResult
    destination: str
    reply_seq: int | None = None
    #: The attempt's own span (its `traceparent`), with tracing on.
    span: SpanContext | None = None


class OutcomeRecorder:
    """Logs, counts and journals delivery outcomes: the one builder of their store rows."""

    def __init__(
        self, writer: Writer, metrics: BrokerMetrics, tracer: BrokerTracer | None = None
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._tracer = tracer

    def succeeded(self, attempt: Attempt) -> None:
        """The subscriber took the event (and its reply, if any, is stored), or the dead-letter
        sink took it."""
        self._time(attempt)
        if attempt.phase is _SUBSCRIBER:
            self._metrics.delivered(attempt.trigger, time.time() - attempt.envelope.arrival)
            outcome, finished = _DELIVERED
        else:
            self._metrics.dead_lettered(attempt.trigger, "dead_letter_sink")
            outcome, finished = _DEAD_LETTERED
        self._log(attempt, outcome, logging.INFO, outcome)
        state = _delivery_state(attempt, finished, attempt.number)
        self._write(attempt, outcome, state)

    def retry(self, attempt: Attempt, wait: float, failure: Failure | None) -> None:
        """The attempt failed and another of the same phase follows after `wait` seconds."""
        self._time(attempt)
        self._metrics.retried(attempt.trigger)
        self._log(attempt, Outcome.RETRY, logging.INFO, f"attempt failed; retry in {wait:.3f}s")
        state = _delivery_state(
            attempt, attempt.phase.state, attempt.number, time.time() + wait, failure
        )
        self._write(attempt, Outcome.RETRY, state)

    def failed(self, attempt: Attempt, failure: Failure, why: str) -> None:
        """The subscriber failed for good; the event moves on to the dead-letter sink."""
        self._time(attempt)
        self._log(attempt, Outcome.FAILED, logging.WARNING, why)
        state = _delivery_state(attempt, State.DEAD_LETTERING, 0, None, failure)
        self._write(attempt, Outcome.FAILED, state)

    def kept(self, attempt: Attempt, failure: Failure, reason: str) -> None:
        """No dead-letter sink took the event: keep it in the local dead-letter table."""
        self._time(attempt)
        self._metrics.dead_lettered(attempt.trigger, "local")
        message = f"kept in the local dead-letter table: {reason}"
        self._log(attempt, Outcome.KEPT, logging.WARNING, message)
        dead_letter = (  # a `dead_letters` row
            attempt.envelope.seq,
            attempt.trigger,
            time.time(),
            reason,
            failure.destination,
            failure.status,
            failure.extensions()["knativeerrordata"],
        )
        state = _delivery_state(attempt, State.KEPT, attempt.number)
        self._write(attempt, Outcome.KEPT, state, dead_letter=dead_letter)

    def _time(self, attempt: Attempt) -> None:
        # The attempt histogram is of subscriber attempts only.
        if attempt.phase is _SUBSCRIBER:
            self._metrics.attempt(attempt.trigger, attempt.seconds)

    def _write(
        self,
        attempt: Attempt,
        outcome: Outcome,
        state: DeliveryState,
        dead_letter: tuple[object, ...] | None = None,
    ) -> None:
        result = attempt.result
        row = (  # an `attempts` row, with plain strings (see State)
            attempt.envelope.seq,
            attempt.trigger,
            attempt.number,
            _TEXT[attempt.phase],
            attempt.url,
            attempt.started,
            round(attempt.seconds * 1000, 3),
            result.status,
            _TEXT[outcome],
            result.error,
            attempt.reply_seq,
        )
        self._writer.record(attempt=row, delivery=state, dead_letter=dead_letter)
        if self._tracer is not None:
            self._tracer.attempted(attempt, outcome)

    def _log(self, attempt: Attempt, outcome: Outcome, level: int, message: str) -> None:
        if not log.isEnabledFor(level):
            return
        event = attempt.envelope.event
        result = attempt.result
        phase = _TEXT[attempt.phase]
        record = _OutcomeRecord(
            level,
            f"{message} ({phase} {attempt.url})",
            {
                "event_id": event.id,
                "type": event.type,
                "source": event.source,
                "trigger": attempt.trigger,
                "outcome": _TEXT[outcome],
                "attempt": attempt.number,
                "status": result.status,
                "duration_ms": round(attempt.seconds * 1000, 3),
                "destination": phase,
                "error": result.error,
            },
        )
        log.handle(record)


def _delivery_state(
    attempt: Attempt,
    state: State,
    attempts: int,
    next_at: float | None = None,
    failure: Failure | None = None,
) -> DeliveryState:
    """The delivery's row after `attempt`; a failure is kept for the dead-letter extensions."""
    error = () if failure is None else (failure.destination, failure.status, failure.body)
    return DeliveryState(attempt.envelope.seq, attempt.trigger, state, attempts, next_at, *error)


class _OutcomeRecord(logging.LogRecord):
    """A log record with only what the JSON formatter reads.

    LogRecord's own constructor (and Logger.log's search for the caller) work out source file,
    thread, process and more, which no outcome line shows; at thousands of lines per second
    that is a noticeable share of each delivery's cost.
    """

    def __init__(self, level: int, message: str, fields: dict[str, object]) -> None:
        # LogRecord.__init__ is skipped on purpose; every attribute a formatter may read is set.
        self.__dict__.update(fields)
        self.name = log.name
        self.msg = message
        self.args = ()
        self.levelno = level
        self.levelname = logging.getLevelName(level)
        self.created = time.time()
        self.msecs = (self.created % 1) * 1000
        self.relativeCreated = 0.0
        self.thread = self.threadName = self.process = self.processName = None
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.pathname = __file__
        self.filename = "outcomes.py"
        self.module = "outcomes"
        self.lineno = 0
        self.funcName = "_log"
