"""The transactional outbox: originated events stored with the change that caused them."""

from __future__ import annotations

import time

import sqlalchemy as sa

from kit.database import KIT_METADATA
from kit.outgoing import Message

outbox = sa.Table(
    "kit_outbox",
    KIT_METADATA,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(512), nullable=False),
    sa.Column("type", sa.String(512), nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
    sa.Column("lease_until", sa.Float, nullable=False, default=0.0),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)


def enqueue(connection: sa.Connection, event_id: str, event_type: str, message: Message) -> None:
    """Store an event to send, in the caller's transaction: it leaves only if that commits."""
    now = time.time()
    connection.execute(
        outbox.insert().values(
            event_id=event_id,
            type=event_type,
            headers=message.to_json(),
            body=message.body,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            lease_until=0.0,
        )
    )


def backlog(connection: sa.Connection) -> int:
    """How many events wait to be accepted by the broker."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())
