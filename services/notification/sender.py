"""The mail sender: a background thread per process that sends the pending mails of the mail
outbox (the notifications table, store.py) and emits notification.sent for each.

The handlers store each mail `pending` and answer at once; the sender takes due mails oldest
first, a batch at a time over one SMTP connection, and after each mail the server accepted marks
it `sent` and emits notification.sent (through the kit's outbox) in one transaction. A temporary
failure (the server unreachable, a 4xx, a timeout) leaves the mail pending, due again after an
exponential back-off kept in the row; a 5xx refusal marks it `failed`, not retried.

Several senders (workers, replicas) may share one table, as relays share the kit's outbox
(kit/relay.py): a sender leases the rows it claims for a few seconds and renews the lease while
it sends them; when its process dies the next sender takes them once the lease has run out.

At least once, never forgotten: when the database fails after the server accepted a mail, the
sender keeps that in memory and retries the mark-sent until the database answers, without sending
again. Only a crash between the server's acceptance and the mark-sent sends a mail twice, with
the same (deterministic) Message-ID.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kit import NewEvent, ResourceKey, Service
from kit.lease import LeaseKeeper
from services.notification import store
from services.notification.mailer import (
    Mail,
    Mailer,
    MailRefused,
    MailSession,
    MailUnavailable,
    MailUnreachable,
)
from wire.knative.delivery import DeliverySpec, backoff_delay

if TYPE_CHECKING:
    from services.notification.metrics import MailMetrics

log = logging.getLogger("shop.notification.sender")

#: Set by a handler's transaction once it committed a mail to send: the sender wakes.
MAIL_QUEUED: ResourceKey[threading.Event] = ResourceKey("mail queued")

# While a sent mail cannot be marked sent: retry after 0.1 s, doubling up to this.
RECORD_RETRY_CAP_SECONDS = 1.0
# How often the log repeats that a sent mail is still not recorded.
RECORD_LOG_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class SenderSettings:
    """How the sender works; the defaults are what the service runs with."""

    poll_seconds: float = 1.0
    batch_size: int = 50
    lease_seconds: float = 5.0
    backoff_delay_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    # After a database outage, how long to wait once it answers before claiming again, so that a
    # sender retrying a mark-sent (its lease lapsed meanwhile) records it before anyone else
    # claims the mail: well over RECORD_RETRY_CAP_SECONDS.
    recovery_seconds: float = 3.0
    #: False: no thread (a test calls run_once()).
    thread: bool = True


def mail_backoff(attempts: int, settings: SenderSettings) -> float:
    """Seconds before the next attempt after `attempts` failures: Knative's exponential back-off
    (wire.knative.delivery), capped, and jittered so that mails deferred together spread out."""
    spec = DeliverySpec(backoff_policy="exponential", backoff_delay=settings.backoff_delay_seconds)
    ceiling = min(settings.backoff_cap_seconds, backoff_delay(spec, max(attempts, 1)))
    return float(ceiling * random.uniform(0.5, 1.0))


class MailSender:
    """Sends the mail outbox; `start()` runs it in a thread, `run_once()` one batch."""

    def __init__(
        self,
        service: Service,
        mailer: Mailer,
        settings: SenderSettings,
        metrics: MailMetrics,
        queued: threading.Event,
    ) -> None:
        if service.engine is None:
            raise ValueError("the mail sender needs the service's database")
        self._service = service
        self._engine: Engine = service.engine
        self._mailer = mailer
        self._settings = settings
        self._metrics = metrics
        self._wake = queued
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._settings.poll_seconds)
            self._wake.clear()
            try:
                while self.run_once() == self._settings.batch_size and not self._stop.is_set():
                    pass
            except sa.exc.SQLAlchemyError as error:
                log.warning(
                    "mail sender cannot use the database; waiting for it",
                    extra={"outcome": "database_unavailable", "error": str(error)[:300]},
                )
                self._wait_for_database()
            except Exception:
                log.exception("mail sender pass failed")

    def _wait_for_database(self) -> None:
        """Return `recovery_seconds` after the database answers again (or at stop)."""
        while not self._stop.wait(self._settings.poll_seconds):
            try:
                with self._engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
            except sa.exc.SQLAlchemyError:
                continue
            self._stop.wait(self._settings.recovery_seconds)
            return

    # -- one batch ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Send one batch of due mails; return how many were claimed."""
        owner = uuid.uuid4().hex
        with self._engine.begin() as connection:
            mails = store.claim_due(
                connection,
                owner,
                limit=self._settings.batch_size,
                lease_seconds=self._settings.lease_seconds,
            )
        if not mails:
            return 0
        lease = LeaseKeeper(
            self._engine,
            store.notifications,
            owner,
            lease_seconds=self._settings.lease_seconds,
            every=self._settings.lease_seconds / 3,
            name="mail-lease",
        )
        with lease, closing(self._mailer.session()) as session:
            try:
                self._send_batch(session, mails)
            finally:
                self._release(owner)
        return len(mails)

    def _send_batch(self, session: MailSession, mails: Sequence[store.StoredMail]) -> None:
        for index, mail in enumerate(mails):
            if self._stop.is_set():
                return  # the rest is released for the next sender
            try:
                session.send(Mail(mail.recipient, mail.mail_subject, mail.body, mail.message_id))
            except MailUnreachable as error:
                self._defer(mails[index:], str(error))  # nothing gets through for now
                return
            except MailUnavailable as error:
                self._defer([mail], str(error))
                continue
            except MailRefused as error:
                self._fail(mail, str(error))
                continue
            self._metrics.sent.inc()
            if not self._record_sent(mail):
                # The database was away: the leases of the rest may have lapsed and been taken.
                return

    def _record_sent(self, mail: store.StoredMail) -> bool:
        """Mark the mail sent and emit notification.sent, retrying until the database takes it;
        True if it did at once. Never sends again: the server has the mail."""
        delay, failures, log_at = 0.1, 0, 0.0
        while True:
            try:
                self._mark_sent(mail)
            except Exception as error:  # the database, usually; a crash now is the one window
                failures += 1
                if time.monotonic() >= log_at:
                    log_at = time.monotonic() + RECORD_LOG_EVERY_SECONDS
                    log.warning(
                        "mail sent but not yet recorded as sent; retrying (it is not sent again)",
                        extra=_fields(mail, "record_retry", error=error, attempt=failures),
                    )
                if self._stop.is_set():
                    log.error(
                        "stopping with a mail sent but not recorded: it will be sent again",
                        extra=_fields(mail, "record_abandoned", error=error, attempt=failures),
                    )
                    return False
                self._stop.wait(delay)
                delay = min(delay * 2, RECORD_RETRY_CAP_SECONDS)
                continue
            return failures == 0

    def _mark_sent(self, mail: store.StoredMail) -> None:
        with self._service.transaction(mail.traceparent) as tx:
            if not store.mark_sent(tx.connection, mail.seq, mail.attempts + 1):
                return  # marked sent already (by a sender that took it after a lapsed lease)
            tx.emit(
                NewEvent(
                    "notification.sent",
                    {
                        "notification_id": mail.id,
                        "cause": mail.cause,
                        "to": mail.recipient,
                        "message_id": mail.message_id,
                    },
                    subject=mail.subject,
                )
            )
        log.info("mail sent", extra=_fields(mail, "sent", attempt=mail.attempts + 1))

    def _defer(self, mails: Sequence[store.StoredMail], error: str) -> None:
        """Keep the mails pending, each due again after its back-off."""
        self._metrics.send_failures.inc(len(mails))
        with self._engine.begin() as connection:
            for mail in mails:
                attempts = mail.attempts + 1
                delay = mail_backoff(attempts, self._settings)
                store.reschedule(connection, mail.seq, attempts, time.time() + delay, error)
                log.warning(
                    "mail not sent; retrying in %.1fs",
                    delay,
                    extra=_fields(mail, "deferred", error=error, attempt=attempts),
                )

    def _fail(self, mail: store.StoredMail, error: str) -> None:
        self._metrics.failed.inc()
        log.error(
            "mail refused by the server; marked failed, not retried",
            extra=_fields(mail, "failed", error=error, attempt=mail.attempts + 1),
        )
        with self._engine.begin() as connection:
            store.mark_failed(connection, mail.seq, mail.attempts + 1, error)

    def _release(self, owner: str) -> None:
        try:
            with self._engine.begin() as connection:
                store.release(connection, owner)
        except sa.exc.SQLAlchemyError as error:
            log.warning(
                "could not give back unsent mails; their lease runs out instead",
                extra={"outcome": "release_failed", "error": str(error)[:300]},
            )


def _fields(
    mail: store.StoredMail,
    outcome: str,
    *,
    error: object = None,
    attempt: int | None = None,
) -> dict[str, object]:
    """The log fields of one mail's outcome."""
    return {
        "type": mail.cause["type"],
        "subject": mail.subject,
        "outcome": outcome,
        "attempt": attempt,
        "error": None if error is None else str(error)[:300],
    }
