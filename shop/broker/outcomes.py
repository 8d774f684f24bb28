"""What happens when a delivery attempt ends: one log line, the metrics, the journal rows.

Each outcome is recorded in one place so that the log, `/metrics` and the journal always agree.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shop.broker.envelope import Envelope
from shop.broker.metrics import BrokerMetrics
from shop.broker.sender import AttemptResult
from shop.broker.store import DeliveryState, Writer

log = logging.getLogger("shop.broker.delivery")

# Outcome names, as the log's `outcome` key and the journal's `attempts.outcome` column say them.
DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
KEPT = "kept"

SUBSCRIBER = "subscriber"
DEAD_LETTER_SINK = "dead_letter_sink"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished attempt: to whom, which one, when, how long, how it ended."""

    envelope: Envelope
    trigger: str
    number: int
    target: str
    url: str
    started: float
    seconds: float
    result: AttemptResult


class OutcomeRecorder:
    """Logs, counts and journals delivery outcomes."""

    def __init__(self, writer: Writer, metrics: BrokerMetrics) -> None:
        self._writer = writer
        self._metrics = metrics

    def delivered(self, attempt: Attempt, reply_seq: int | None) -> None:
        """The subscriber took the event (and its reply, if any, is stored as `reply_seq`)."""
        self._metrics.attempt(attempt.trigger, attempt.seconds)
        self._metrics.delivered(attempt.trigger, time.time() - attempt.envelope.arrival)
        self._finish(attempt, DELIVERED, "delivered", reply_seq=reply_seq)

    def retry(self, attempt: Attempt, wait: float, delivery: DeliveryState) -> None:
        """The attempt failed and another follows after `wait` seconds."""
        if attempt.target == SUBSCRIBER:
            self._metrics.attempt(attempt.trigger, attempt.seconds)
        self._metrics.retried(attempt.trigger)
        self._log(attempt, RETRY, logging.INFO, f"attempt failed; retry in {wait:.3f}s")
        self._writer.record(attempt=_attempt_row(attempt, RETRY, None), delivery=delivery)

    def failed(self, attempt: Attempt, delivery: DeliveryState, why: str) -> None:
        """The subscriber failed for good; the event moves on to the dead-letter sink."""
        self._metrics.attempt(attempt.trigger, attempt.seconds)
        self._log(attempt, FAILED, logging.WARNING, why)
        self._writer.record(attempt=_attempt_row(attempt, FAILED, None), delivery=delivery)

    def dead_lettered(self, attempt: Attempt) -> None:
        """The dead-letter sink took the original event."""
        self._metrics.dead_lettered(attempt.trigger, "dead_letter_sink")
        self._finish(attempt, DEAD_LETTERED, "dead_lettered", reply_seq=None)

    def kept(
        self,
        attempt: Attempt,
        reason: str,
        destination: str,
        status: int | None,
        error_data: str,
    ) -> None:
        """No dead-letter sink took the event: keep it in the local dead-letter table."""
        self._metrics.dead_lettered(attempt.trigger, "local")
        if attempt.target == SUBSCRIBER:
            self._metrics.attempt(attempt.trigger, attempt.seconds)
        envelope = attempt.envelope
        self._log(attempt, KEPT, logging.WARNING, f"kept in the local dead-letter table: {reason}")
        self._writer.record(
            attempt=_attempt_row(attempt, KEPT, None),
            delivery=DeliveryState(envelope.seq, attempt.trigger, "kept", attempt.number),
            dead_letter=(
                envelope.seq,
                attempt.trigger,
                time.time(),
                reason,
                destination,
                status,
                error_data,
            ),
        )

    def _finish(self, attempt: Attempt, outcome: str, state: str, reply_seq: int | None) -> None:
        self._log(attempt, outcome, logging.INFO, outcome)
        self._writer.record(
            attempt=_attempt_row(attempt, outcome, reply_seq),
            delivery=DeliveryState(attempt.envelope.seq, attempt.trigger, state, attempt.number),
        )

    def _log(self, attempt: Attempt, outcome: str, level: int, message: str) -> None:
        if not log.isEnabledFor(level):
            return
        event = attempt.envelope.event
        result = attempt.result
        record = _OutcomeRecord(
            level,
            f"{message} ({attempt.target} {attempt.url})",
            {
                "event_id": event.id,
                "type": event.type,
                "source": event.source,
                "trigger": attempt.trigger,
                "outcome": outcome,
                "attempt": attempt.number,
                "status": result.status,
                "duration_ms": round(attempt.seconds * 1000, 3),
                "destination": attempt.target,
                "error": result.error,
            },
        )
        log.handle(record)


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


def _attempt_row(attempt: Attempt, outcome: str, reply_seq: int | None) -> tuple[object, ...]:
    result = attempt.result
    return (
        attempt.envelope.seq,
        attempt.trigger,
        attempt.number,
        attempt.target,
        attempt.url,
        attempt.started,
        round(attempt.seconds * 1000, 3),
        result.status,
        outcome,
        result.error,
        reply_seq,
    )
