"""Once-only handling: (source, id) of every handled event and the answer it got."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from kit.database import KIT_METADATA, insert_ignoring_duplicates
from kit.outgoing import Message

processed = sa.Table(
    "kit_processed_events",
    KIT_METADATA,
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("id", sa.String(512), primary_key=True),
    sa.Column("type", sa.String(512), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("reply_headers", sa.Text, nullable=True),
    sa.Column("reply_body", sa.LargeBinary, nullable=True),
    sa.Column("handled_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Answer:
    """What the kit answered to an event: 202, or 200 with a reply message."""

    status: int
    reply: Message | None = None


ACCEPTED = Answer(202)


@dataclass(frozen=True)
class Outcome:
    """How one event was handled: the answer, and whether it had been handled before."""

    answer: Answer
    duplicate: bool = False


def claim(connection: sa.Connection, source: str, event_id: str, event_type: str) -> bool:
    """Mark the event as being handled in this transaction; False if it was handled already.

    A concurrent delivery of the same event waits here until the first one's transaction ends.
    """
    return insert_ignoring_duplicates(
        connection,
        processed,
        {"source": source, "id": event_id, "type": event_type, "handled_at": time.time()},
    )


def record(connection: sa.Connection, source: str, event_id: str, answer: Answer) -> None:
    """Store the answer given to the event, in the transaction that claimed it."""
    connection.execute(
        processed.update()
        .where(processed.c.source == source, processed.c.id == event_id)
        .values(
            status=answer.status,
            reply_headers=answer.reply.to_json() if answer.reply else None,
            reply_body=answer.reply.body if answer.reply else None,
        )
    )


def find_answer(connection: sa.Connection, source: str, event_id: str) -> Answer | None:
    """The answer given to an event handled before, if any."""
    row = connection.execute(
        sa.select(processed.c.status, processed.c.reply_headers, processed.c.reply_body).where(
            processed.c.source == source, processed.c.id == event_id
        )
    ).first()
    if row is None or row.status is None:
        return None
    if row.reply_headers is None:
        return Answer(row.status)
    return Answer(row.status, Message.from_stored(row.reply_headers, row.reply_body))
