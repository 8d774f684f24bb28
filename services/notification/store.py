"""The notification service's tables (who to mail, the mails) and their queries.

`notifications` is also the mail outbox: a handler stores each mail `pending`, in its own
transaction; the sender (sender.py) claims pending rows with a short lease, sends them, and
marks each `sent` or `failed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kit.database import insert_ignoring_duplicates

metadata = sa.MetaData()

PENDING, SENT, FAILED = "pending", "sent", "failed"

recipients = sa.Table(
    "recipients",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    # `<event type>/<order or user id>`: one mail per thing that happened, however often the
    # event announcing it arrives and under whatever id.
    sa.Column("id", sa.String(300), nullable=False, unique=True),
    sa.Column("cause_type", sa.String(200), nullable=False),
    sa.Column("cause_id", sa.String(512), nullable=False),
    sa.Column("cause_source", sa.String(1024), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("mail_subject", sa.String(300), nullable=False),
    sa.Column("message_id", sa.String(300), nullable=False),
    # pending (stored, not yet accepted by the server), sent, failed (refused for good).
    sa.Column("status", sa.String(16), nullable=False),
    # The last error: why a pending mail waits, or why a failed one was refused.
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("sent_at", sa.String(40), nullable=True),
    # The mail's text (NULL only in rows sent before mails were stored to be sent later).
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    # The trace context of the event the mail is about, which notification.sent continues.
    sa.Column("traceparent", sa.String(55), nullable=True),
    # The send schedule, in the row so that it survives restarts: attempts made, and when the
    # next one is due (epoch seconds).
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False, server_default="0"),
    # The sender that claimed the row, until when (renewed while it sends; see sender.py).
    sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
)


@dataclass(frozen=True)
class Recipient:
    customer_id: str
    name: str
    email: str


@dataclass(frozen=True)
class StoredMail:
    """A pending mail as the sender claimed it."""

    seq: int
    id: str
    cause: dict[str, str]
    subject: str
    recipient: str
    mail_subject: str
    body: str
    message_id: str
    traceparent: str | None
    attempts: int


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def remember_recipient(connection: sa.Connection, recipient: Recipient) -> None:
    """Store (or refresh) where a customer's mail goes."""
    row = {"customer_id": recipient.customer_id, "name": recipient.name, "email": recipient.email}
    if not insert_ignoring_duplicates(connection, recipients, row):
        connection.execute(
            recipients.update()
            .where(recipients.c.customer_id == recipient.customer_id)
            .values(name=recipient.name, email=recipient.email)
        )


def find_recipient(connection: sa.Connection, customer_id: str) -> Recipient | None:
    row = connection.execute(
        sa.select(recipients.c.customer_id, recipients.c.name, recipients.c.email).where(
            recipients.c.customer_id == customer_id
        )
    ).first()
    return None if row is None else Recipient(row.customer_id, row.name, row.email)


def store_mail(connection: sa.Connection, row: dict[str, Any]) -> bool:
    """Store a mail to send, pending and due now; False if a mail with this id exists (or is
    being stored by a concurrent transaction that then commits)."""
    return insert_ignoring_duplicates(
        connection,
        notifications,
        {
            **row,
            "status": PENDING,
            "created_at": now(),
            "attempts": 0,
            "next_attempt_at": time.time(),
            "lease_until": 0.0,
        },
    )


# -- the sender's queries ------------------------------------------------------------------------


def claim_due(
    connection: sa.Connection, owner: str, *, limit: int, lease_seconds: float
) -> list[StoredMail]:
    """Lease up to `limit` pending mails that are due and leased by nobody, oldest first."""
    at = time.time()
    n = notifications.c
    due = (
        sa.select(n.seq)
        .where(n.status == PENDING, n.next_attempt_at <= at, n.lease_until <= at)
        .order_by(n.seq)
        .limit(limit)
        .scalar_subquery()
    )
    # The conditions again outside the subquery: PostgreSQL checks them anew on a row that a
    # concurrent claimer changed meanwhile, so that two claimers never both take it.
    connection.execute(
        notifications.update()
        .where(n.seq.in_(due), n.status == PENDING, n.lease_until <= at)
        .values(lease_until=at + lease_seconds, lease_owner=owner)
    )
    rows = connection.execute(
        sa.select(notifications).where(n.lease_owner == owner).order_by(n.seq)
    ).all()
    return [
        StoredMail(
            seq=row.seq,
            id=row.id,
            cause={"type": row.cause_type, "id": row.cause_id, "source": row.cause_source},
            subject=row.subject,
            recipient=row.recipient,
            mail_subject=row.mail_subject,
            body=row.body or "",
            message_id=row.message_id,
            traceparent=row.traceparent,
            attempts=row.attempts,
        )
        for row in rows
    ]


def release(connection: sa.Connection, owner: str) -> None:
    """Give back the mails of a claim that were not sent (due again at once)."""
    connection.execute(
        notifications.update()
        .where(notifications.c.lease_owner == owner)
        .values(lease_until=0.0, lease_owner=None)
    )


def mark_sent(connection: sa.Connection, seq: int, attempts: int) -> bool:
    """Record that the server accepted the mail at attempt `attempts`; False if it was marked
    sent already."""
    result = connection.execute(
        notifications.update()
        .where(notifications.c.seq == seq, notifications.c.status == PENDING)
        .values(
            status=SENT,
            sent_at=now(),
            error=None,
            attempts=attempts,
            lease_until=0.0,
            lease_owner=None,
        )
    )
    return bool(result.rowcount)


def mark_failed(connection: sa.Connection, seq: int, attempts: int, error: str) -> None:
    """Record that the server refused the mail for good."""
    connection.execute(
        notifications.update()
        .where(notifications.c.seq == seq, notifications.c.status == PENDING)
        .values(status=FAILED, error=error, attempts=attempts, lease_until=0.0, lease_owner=None)
    )


def reschedule(
    connection: sa.Connection, seq: int, attempts: int, next_attempt_at: float, error: str
) -> None:
    """Keep the mail pending, due again at `next_attempt_at`."""
    connection.execute(
        notifications.update()
        .where(notifications.c.seq == seq, notifications.c.status == PENDING)
        .values(
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            error=error,
            lease_until=0.0,
            lease_owner=None,
        )
    )


def count_pending(connection: sa.Connection) -> int:
    query = sa.select(sa.func.count()).where(notifications.c.status == PENDING)
    return int(connection.execute(query).scalar_one())


# -- the API ---------------------------------------------------------------------------------------


def list_notifications(
    connection: sa.Connection, *, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The mails, newest first, each with its state (pending, sent, failed)."""
    query = sa.select(notifications).order_by(notifications.c.seq.desc()).limit(limit)
    if subject is not None:
        query = query.where(notifications.c.subject == subject)
    return [
        {
            "id": row.id,
            "cause": {"type": row.cause_type, "id": row.cause_id, "source": row.cause_source},
            "subject": row.subject,
            "to": row.recipient,
            "mail_subject": row.mail_subject,
            "message_id": row.message_id,
            "status": row.status,
            "error": row.error,
            "attempts": row.attempts,
            "next_attempt_at": _iso(row.next_attempt_at) if row.status == PENDING else None,
            "created_at": row.created_at,
            "sent_at": row.sent_at,
        }
        for row in connection.execute(query)
    ]


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
