"""The outbox relay: posts stored events to the broker until it accepts them (2xx).

It follows Knative's delivery rules (wire.knative.delivery): what Knative retries (no answer,
5xx, 404, 408, 409, 429) is retried with exponential back-off, capped so that the outbox keeps
trying for as long as it takes. An event the broker refuses for good (any other 4xx: it is not
a valid event, or too large) is parked: kept in the outbox with its error, never posted again
until an operator clears `next_attempt_at`, and counted in `shop_outbox_parked`.

Several relays (workers, replicas) may drain one outbox. A relay leases the rows it claims for a
few seconds and keeps renewing the lease while it posts them; when its process dies mid-batch the
renewals stop, and the next relay takes those rows once the short lease runs out, within seconds.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kit.lease import LeaseKeeper
from kit.metrics import KitMetrics
from kit.outbox import outbox
from kit.outgoing import Message
from kit.telemetry import Telemetry, record_response
from wire.http_binding import HEADER_PREFIX, encode_header_value
from wire.knative.delivery import DeliverySpec, backoff_delay, is_retryable
from wire.oidc.sender_token import bearer_headers

log = logging.getLogger("shop.kit.relay")

#: How long claimed rows stay another relay's after the claimer's last renewal.
LEASE_SECONDS = 5.0
RENEW_SECONDS = LEASE_SECONDS / 3
BATCH_SIZE = 100
BACKOFF = DeliverySpec(backoff_policy="exponential", backoff_delay=0.5)
BACKOFF_CAP_SECONDS = 60.0
#: `next_attempt_at` of a parked event: never due.
PARKED = math.inf


def relay_backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failures: Knative's exponential back-off,
    capped and jittered (processes that failed together do not retry together).

    The schedule lives in the outbox row, not in a retry loop, so that it survives restarts.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, backoff_delay(BACKOFF, max(attempts, 1)))
    return float(ceiling * random.uniform(0.5, 1.0))


@dataclass(frozen=True)
class Failure:
    """Why a post was not accepted: the status (None: no answer) and a short description."""

    status: int | None
    error: str


@dataclass(frozen=True)
class RelaySettings:
    """Where and how the relay sends."""

    sink: str | None
    ce_overrides: Mapping[str, str]
    poll_seconds: float = 1.0
    timeout_seconds: float = 10.0
    #: The token sent with each post, read at each post (None or no such file: none sent).
    token_file: str | None = None


class OutboxRelay:
    """A background thread per process that drains the outbox; several may run at once."""

    def __init__(
        self,
        engine: Engine,
        settings: RelaySettings,
        metrics: KitMetrics,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._metrics = metrics
        self._telemetry = telemetry or Telemetry(None)
        self._session = requests.Session()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_no_sink = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._session.close()

    def wake(self) -> None:
        """Send now rather than at the next poll (called after a commit that enqueued events)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._settings.poll_seconds)
            self._wake.clear()
            try:
                while self.run_once() == BATCH_SIZE and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("outbox relay pass failed")

    def run_once(self) -> int:
        """Send every due event once; return how many were claimed."""
        if not self._settings.sink:
            if not self._warned_no_sink:
                log.warning("no K_SINK or BROKER_URL: outbox events wait until one is configured")
                self._warned_no_sink = True
            return 0
        owner, rows = self._claim_due()
        if not rows:
            return 0
        sent: list[int] = []
        keeper = LeaseKeeper(
            self._engine,
            outbox,
            owner,
            lease_seconds=LEASE_SECONDS,
            every=RENEW_SECONDS,
            name="outbox-lease",
        )
        with keeper:
            for seq, headers, body, attempts in rows:
                failure = self._post(Message.from_stored(headers, body))
                if failure is None:
                    sent.append(seq)
                elif is_retryable(failure.status):
                    self._metrics.relay_failures.inc()
                    self._reschedule(seq, attempts + 1, failure.error)
                else:
                    self._metrics.relay_parked.inc()
                    self._park(seq, attempts + 1, failure.error)
        if sent:
            with self._engine.begin() as connection:
                connection.execute(outbox.delete().where(outbox.c.seq.in_(sent)))
            self._metrics.relayed.inc(len(sent))
        return len(rows)

    def _claim_due(self) -> tuple[str, list[tuple[int, str, bytes, int]]]:
        owner = uuid.uuid4().hex
        now = time.time()
        due = (
            sa.select(outbox.c.seq)
            .where(outbox.c.next_attempt_at <= now, outbox.c.lease_until <= now)
            .order_by(outbox.c.seq)
            .limit(BATCH_SIZE)
            .scalar_subquery()
        )
        with self._engine.begin() as connection:
            connection.execute(
                outbox.update()
                .where(outbox.c.seq.in_(due), outbox.c.lease_until <= now)
                .values(lease_until=now + LEASE_SECONDS, lease_owner=owner)
            )
            rows = connection.execute(
                sa.select(outbox.c.seq, outbox.c.headers, outbox.c.body, outbox.c.attempts)
                .where(outbox.c.lease_owner == owner)
                .order_by(outbox.c.seq)
            ).all()
        return owner, [(row.seq, row.headers, row.body, row.attempts) for row in rows]

    def _post(self, message: Message) -> Failure | None:
        """Post one event; None when the broker accepted it, else what went wrong."""
        assert self._settings.sink is not None
        with self._telemetry.sending(message, self._settings.sink) as span:
            status, failure = self._send(message, self._settings.sink)
            record_response(span, status, failure.error if failure else None)
        return failure

    def _send(self, message: Message, sink: str) -> tuple[int | None, Failure | None]:
        """The status of the post (None: no answer) and, unless it was accepted, why not."""
        headers = dict(message.headers)
        for name, value in self._settings.ce_overrides.items():
            headers[HEADER_PREFIX + name] = encode_header_value(value)
        try:
            headers.update(bearer_headers(self._settings.token_file))
        except OSError as error:
            return None, Failure(None, f"no token to send: {error}")
        try:
            response = self._session.post(
                sink, headers=headers, data=message.body, timeout=self._settings.timeout_seconds
            )
        except requests.RequestException as error:
            return None, Failure(None, f"{type(error).__name__}: {error}")
        status = response.status_code
        if 200 <= status < 300:
            return status, None
        return status, Failure(status, f"HTTP {status}: {response.text[:200]}")

    def _reschedule(self, seq: int, attempts: int, error: str) -> None:
        delay = relay_backoff(attempts)
        log.warning(
            "outbox event not accepted; retrying in %.1fs",
            delay,
            extra={"outcome": "relay_failed", "attempt": attempts, "error": error},
        )
        self._schedule(seq, attempts, time.time() + delay, error)

    def _park(self, seq: int, attempts: int, error: str) -> None:
        log.error(
            "outbox event refused by the broker; parked in the outbox, not retried",
            extra={"outcome": "relay_parked", "attempt": attempts, "error": error},
        )
        self._schedule(seq, attempts, PARKED, error)

    def _schedule(self, seq: int, attempts: int, next_attempt_at: float, error: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                outbox.update()
                .where(outbox.c.seq == seq)
                .values(
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    lease_until=0.0,
                    lease_owner=None,
                    last_error=error,
                )
            )
