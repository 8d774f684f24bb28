"""The outbox relay: posts stored events to the broker until it accepts them (2xx)."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kit.metrics import KitMetrics
from kit.outbox import outbox
from kit.outgoing import Message
from wire.http_binding import HEADER_PREFIX, encode_header_value

log = logging.getLogger("shop.kit.relay")

LEASE_SECONDS = 30.0
BATCH_SIZE = 100
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0


def relay_backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failures: capped exponential, jittered.

    The schedule lives in the outbox row, not in a retry loop, so that it survives restarts.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return float(ceiling * random.uniform(0.5, 1.0))


@dataclass(frozen=True)
class RelaySettings:
    """Where and how the relay sends."""

    sink: str | None
    ce_overrides: Mapping[str, str]
    poll_seconds: float = 1.0
    timeout_seconds: float = 10.0


class OutboxRelay:
    """A background thread per process that drains the outbox; several may run at once."""

    def __init__(self, engine: Engine, settings: RelaySettings, metrics: KitMetrics) -> None:
        self._engine = engine
        self._settings = settings
        self._metrics = metrics
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
        rows = self._claim_due()
        sent: list[int] = []
        for seq, headers, body, attempts in rows:
            error = self._post(Message.from_stored(headers, body))
            if error is None:
                sent.append(seq)
            else:
                self._metrics.relay_failures.inc()
                self._reschedule(seq, attempts + 1, error)
        if sent:
            with self._engine.begin() as connection:
                connection.execute(outbox.delete().where(outbox.c.seq.in_(sent)))
            self._metrics.relayed.inc(len(sent))
        return len(rows)

    def _claim_due(self) -> list[tuple[int, str, bytes, int]]:
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
        return [(row.seq, row.headers, row.body, row.attempts) for row in rows]

    def _post(self, message: Message) -> str | None:
        """Post one event; None when the broker accepted it, else what went wrong."""
        headers = dict(message.headers)
        for name, value in self._settings.ce_overrides.items():
            headers[HEADER_PREFIX + name] = encode_header_value(value)
        assert self._settings.sink is not None
        try:
            response = self._session.post(
                self._settings.sink,
                headers=headers,
                data=message.body,
                timeout=self._settings.timeout_seconds,
            )
        except requests.RequestException as error:
            return f"{type(error).__name__}: {error}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    def _reschedule(self, seq: int, attempts: int, error: str) -> None:
        delay = relay_backoff(attempts)
        log.warning(
            "outbox event not accepted; retrying in %.1fs",
            delay,
            extra={"outcome": "relay_failed", "attempt": attempts, "error": error},
        )
        with self._engine.begin() as connection:
            connection.execute(
                outbox.update()
                .where(outbox.c.seq == seq)
                .values(
                    attempts=attempts,
                    next_attempt_at=time.time() + delay,
                    lease_until=0.0,
                    lease_owner=None,
                    last_error=error,
                )
            )
