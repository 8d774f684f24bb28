"""The notification service's tables (who to mail, what was sent) and its queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kit.database import insert_ignoring_duplicates

metadata = sa.MetaData()

SENT, REFUSED = "sent", "refused"

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
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("sent_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Recipient:
    customer_id: str
    name: str
    email: str


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


def claim_notification(connection: sa.Connection, row: dict[str, Any]) -> bool:
    """Record a mail about to be sent; False if a mail with this id exists (or is being sent
    by a concurrent transaction that then commits)."""
    return insert_ignoring_duplicates(
        connection, notifications, {**row, "status": SENT, "sent_at": now()}
    )


def mark_refused(connection: sa.Connection, notification_id: str, error: str) -> None:
    connection.execute(
        notifications.update()
        .where(notifications.c.id == notification_id)
        .values(status=REFUSED, error=error)
    )


def list_notifications(
    connection: sa.Connection, *, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The mails sent (or refused), newest first."""
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
            "sent_at": row.sent_at,
        }
        for row in connection.execute(query)
    ]
