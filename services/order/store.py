"""The order service's tables (orders, their lines, the events seen) and its queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kit.database import insert_ignoring_duplicates

metadata = sa.MetaData()

PENDING, CONFIRMED, CANCELLED = "pending", "confirmed", "cancelled"

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    # Null only for an order this service never placed (outcomes arrived for an unknown id).
    sa.Column("customer_id", sa.String(128), nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("total", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(600), nullable=True),
    # The first outcome of each step: inventory reserved|rejected, payment authorized|declined.
    sa.Column("inventory", sa.String(16), nullable=True),
    sa.Column("payment", sa.String(16), nullable=True),
    sa.Column("placed", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(128), sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.BigInteger, nullable=False),
)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(128), nullable=False, index=True),
    sa.Column("direction", sa.String(8), nullable=False),  # received | sent
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(512), nullable=False),
    sa.Column("source", sa.String(1024), nullable=True),
    sa.Column("at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class Order:
    """An order's state as the saga sees it."""

    id: str
    customer_id: str | None
    currency: str | None
    total: int | None
    status: str
    code: str | None
    reason: str | None
    inventory: str | None
    payment: str | None
    placed: bool
    created_at: str
    updated_at: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def insert_order(
    connection: sa.Connection, order_id: str, customer_id: str, currency: str, lines: list[Line]
) -> None:
    """Store a newly placed, pending order and its lines."""
    at = now()
    connection.execute(
        orders.insert().values(
            id=order_id,
            customer_id=customer_id,
            currency=currency,
            total=sum(line.quantity * line.unit_price for line in lines),
            status=PENDING,
            placed=True,
            created_at=at,
            updated_at=at,
        )
    )
    connection.execute(
        order_lines.insert(),
        [
            {
                "order_id": order_id,
                "line_no": number,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for number, line in enumerate(lines, start=1)
        ],
    )


def insert_unplaced_order(
    connection: sa.Connection, order_id: str, reason: str, step: str, result: str
) -> bool:
    """Record, cancelled, an order this service never placed; False if it is recorded already."""
    at = now()
    return insert_ignoring_duplicates(
        connection,
        orders,
        {
            step: result,
            "id": order_id,
            "status": CANCELLED,
            "code": "unknown_order",
            "reason": reason,
            "placed": False,
            "created_at": at,
            "updated_at": at,
        },
    )


def lock_order(connection: sa.Connection, order_id: str) -> Order | None:
    """The order, locked until the transaction ends (PostgreSQL: FOR UPDATE), or None."""
    row = connection.execute(
        sa.select(orders).where(orders.c.id == order_id).with_for_update()
    ).first()
    return None if row is None else Order(**row._mapping)


def find_order(connection: sa.Connection, order_id: str) -> Order | None:
    row = connection.execute(sa.select(orders).where(orders.c.id == order_id)).first()
    return None if row is None else Order(**row._mapping)


def update_order(connection: sa.Connection, order_id: str, **changes: Any) -> None:
    """Change an order's state columns (status, code, reason, inventory, payment)."""
    connection.execute(
        orders.update().where(orders.c.id == order_id).values(updated_at=now(), **changes)
    )


def lines_of(connection: sa.Connection, order_id: str) -> list[Line]:
    rows = connection.execute(
        sa.select(order_lines.c.sku, order_lines.c.quantity, order_lines.c.unit_price)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.line_no)
    ).all()
    return [Line(row.sku, row.quantity, row.unit_price) for row in rows]


def record_event(
    connection: sa.Connection,
    order_id: str,
    direction: str,
    *,
    event_type: str,
    event_id: str,
    source: str | None = None,
) -> None:
    """Remember an event received or sent about an order (GET /orders/<id> lists them)."""
    connection.execute(
        order_events.insert().values(
            order_id=order_id,
            direction=direction,
            type=event_type,
            event_id=event_id,
            source=source,
            at=now(),
        )
    )


def events_of(connection: sa.Connection, order_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(
            order_events.c.direction,
            order_events.c.type,
            order_events.c.event_id,
            order_events.c.source,
            order_events.c.at,
        )
        .where(order_events.c.order_id == order_id)
        .order_by(order_events.c.seq)
    ).all()
    return [
        {
            "direction": row.direction,
            "type": row.type,
            "id": row.event_id,
            "source": row.source,
            "at": row.at,
        }
        for row in rows
    ]
