"""The deadletter service's tables: each dead letter as it arrived, and each redelivery of it."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from wire.http_binding import WireEvent
from wire.spec import Attributes

metadata = sa.MetaData()

# The extensions Knative adds to an event it hands to a dead-letter sink.
ERROR_DESTINATION = "knativeerrordest"
ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
ERROR_EXTENSIONS = (ERROR_DESTINATION, ERROR_CODE, ERROR_DATA)
# Knative cuts the base64 of the failed response's body at this many characters.
ERROR_DATA_MAX_LENGTH = 1024
# How much of the broker's answer to a redelivery is kept.
RESPONSE_KEEP_CHARACTERS = 2000

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(512), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("type", sa.String(512), nullable=False, index=True),
    sa.Column("subject", sa.String(1024), nullable=True, index=True),
    sa.Column("destination", sa.String(2048), nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    # Every attribute exactly as received (knativeerror* included), as JSON; the data as bytes.
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=True),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    # When the broker last accepted a redelivery of it (None: never).
    sa.Column("redelivered_at", sa.Float, nullable=True),
)

redeliveries = sa.Table(
    "dead_letter_redeliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "dead_letter_id",
        sa.Integer,
        sa.ForeignKey("dead_letters.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempted_at", sa.Float, nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    # The broker's status code; None when it could not be reached.
    sa.Column("status", sa.Integer, nullable=True),
    # accepted (2xx), refused (any other status) or unreachable (no answer).
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class ErrorData:
    """`knativeerrordata` decoded: the start of the failed response's body."""

    text: str | None
    truncated: bool

    @classmethod
    def decode(cls, encoded: str | None) -> ErrorData:
        """Decode the base64 Knative sends; text that is not base64 is kept as it is."""
        if encoded is None:
            return cls(None, False)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return cls(encoded, False)
        # Cut at 1024 base64 characters, the body may end inside a UTF-8 sequence.
        return cls(raw.decode("utf-8", errors="replace"), len(encoded) >= ERROR_DATA_MAX_LENGTH)


@dataclass(frozen=True)
class Redelivery:
    """One attempt to post a dead letter back to the broker, and the broker's answer."""

    attempted_at: float
    url: str
    status: int | None
    outcome: str
    response: str

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered event as it arrived, and why it failed."""

    id: int
    received: WireEvent
    received_at: float
    redelivered_at: float | None

    @property
    def destination(self) -> str | None:
        return self.received.get(ERROR_DESTINATION)

    @property
    def error_code(self) -> int | None:
        return parse_status(self.received.get(ERROR_CODE))

    @property
    def error_data(self) -> ErrorData:
        return ErrorData.decode(self.received.get(ERROR_DATA))

    @property
    def original(self) -> WireEvent:
        """The event as its producer sent it: without the knativeerror* extensions."""
        return self.received.with_attributes(**dict.fromkeys(ERROR_EXTENSIONS))


@dataclass(frozen=True)
class Query:
    """Which dead letters to list: every given field must match; newest first."""

    type: str | None = None
    subject: str | None = None
    destination: str | None = None
    since: float | None = None
    until: float | None = None
    redelivered: bool | None = None
    limit: int = 100


def parse_status(text: str | None) -> int | None:
    """`knativeerrorcode` as a number (structured mode may carry it as an integer already)."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def insert(connection: sa.Connection, event: WireEvent, received_at: float) -> int:
    """Store a dead letter exactly as it arrived; its new id."""
    values: dict[str, Any] = {
        "event_id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.get("subject"),
        "destination": event.get(ERROR_DESTINATION),
        "error_code": parse_status(event.get(ERROR_CODE)),
        "attributes": json.dumps(event.attributes),
        "data": event.data,
        "received_at": received_at,
    }
    inserted = connection.execute(dead_letters.insert().values(values).returning(dead_letters.c.id))
    return int(inserted.scalar_one())


def find(connection: sa.Connection, dead_letter_id: int) -> DeadLetter | None:
    """One dead letter, or None."""
    row = connection.execute(
        sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id)
    ).first()
    return None if row is None else _dead_letter(row._mapping)


def search(connection: sa.Connection, query: Query) -> tuple[list[DeadLetter], int]:
    """The dead letters matching `query`, newest first, and how many match in all."""
    conditions = _conditions(query)
    rows = connection.execute(
        sa.select(dead_letters)
        .where(*conditions)
        .order_by(dead_letters.c.received_at.desc(), dead_letters.c.id.desc())
        .limit(query.limit)
    ).all()
    total = connection.execute(
        sa.select(sa.func.count()).select_from(dead_letters).where(*conditions)
    ).scalar_one()
    return [_dead_letter(row._mapping) for row in rows], int(total)


def pending_after(connection: sa.Connection, after_id: int, limit: int) -> list[DeadLetter]:
    """Dead letters never redelivered with an id above `after_id`, oldest first (a page)."""
    rows = connection.execute(
        sa.select(dead_letters)
        .where(dead_letters.c.id > after_id, dead_letters.c.redelivered_at.is_(None))
        .order_by(dead_letters.c.id)
        .limit(limit)
    ).all()
    return [_dead_letter(row._mapping) for row in rows]


def counts_by_destination(connection: sa.Connection) -> list[tuple[str | None, bool, int]]:
    """(destination, redelivered, count) for every group of stored dead letters."""
    redelivered = dead_letters.c.redelivered_at.is_not(None)
    rows = connection.execute(
        sa.select(dead_letters.c.destination, redelivered.label("redelivered"), sa.func.count())
        .group_by(dead_letters.c.destination, redelivered)
        .order_by(dead_letters.c.destination)
    ).all()
    return [(row[0], bool(row[1]), int(row[2])) for row in rows]


def redeliveries_of(connection: sa.Connection, dead_letter_id: int) -> list[Redelivery]:
    """Every redelivery attempt of a dead letter, oldest first."""
    rows = connection.execute(
        sa.select(redeliveries)
        .where(redeliveries.c.dead_letter_id == dead_letter_id)
        .order_by(redeliveries.c.id)
    ).all()
    return [
        Redelivery(row.attempted_at, row.url, row.status, row.outcome, row.response) for row in rows
    ]


def record_redelivery(connection: sa.Connection, dead_letter_id: int, attempt: Redelivery) -> bool:
    """Record an attempt (and, when accepted, that the dead letter was redelivered).

    False when the dead letter was deleted while the broker was being asked.
    """
    if find(connection, dead_letter_id) is None:
        return False
    connection.execute(
        redeliveries.insert().values(
            dead_letter_id=dead_letter_id,
            attempted_at=attempt.attempted_at,
            url=attempt.url,
            status=attempt.status,
            outcome=attempt.outcome,
            response=attempt.response[:RESPONSE_KEEP_CHARACTERS],
        )
    )
    if attempt.accepted:
        connection.execute(
            dead_letters.update()
            .where(dead_letters.c.id == dead_letter_id)
            .values(redelivered_at=attempt.attempted_at)
        )
    return True


def delete(connection: sa.Connection, dead_letter_id: int) -> bool:
    """Discard a dead letter and its redelivery record; False when there was none."""
    connection.execute(redeliveries.delete().where(redeliveries.c.dead_letter_id == dead_letter_id))
    deleted = connection.execute(
        dead_letters.delete()
        .where(dead_letters.c.id == dead_letter_id)
        .returning(dead_letters.c.id)
    )
    return deleted.first() is not None


def _conditions(query: Query) -> list[sa.ColumnElement[bool]]:
    table = dead_letters.c
    conditions: list[sa.ColumnElement[bool]] = []
    if query.type is not None:
        conditions.append(table.type == query.type)
    if query.subject is not None:
        conditions.append(table.subject == query.subject)
    if query.destination is not None:
        conditions.append(table.destination == query.destination)
    if query.since is not None:
        conditions.append(table.received_at >= query.since)
    if query.until is not None:
        conditions.append(table.received_at < query.until)
    if query.redelivered is True:
        conditions.append(table.redelivered_at.is_not(None))
    if query.redelivered is False:
        conditions.append(table.redelivered_at.is_(None))
    return conditions


def _dead_letter(row: sa.RowMapping) -> DeadLetter:
    attributes: Attributes = json.loads(row["attributes"])
    return DeadLetter(
        id=int(row["id"]),
        received=WireEvent(attributes, row["data"]),
        received_at=float(row["received_at"]),
        redelivered_at=row["redelivered_at"],
    )
