"""The inventory service's tables (stock per sku, reservations per order) and its queries.

Every unit of a sku is in exactly one of three places: available (can be reserved), reserved
(held for a pending order) or sold (its order was confirmed). `stocked` is the sum of the three;
a CHECK constraint holds the database to it, so no code path can lose or invent a unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from kit.database import insert_ignoring_duplicates

metadata = sa.MetaData()

# Reservation states, by order id.
NEW = "new"  # claimed by the transaction handling order.created; never seen committed
RESERVED = "reserved"
REJECTED = "rejected"
RELEASED = "released"
SOLD = "sold"
CANCELLED = "cancelled"  # order.cancelled arrived before order.created: refuse it when it comes

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("available", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("sold", sa.BigInteger, nullable=False),
    sa.Column("stocked", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.CheckConstraint("available >= 0", name="stock_available_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
    sa.CheckConstraint("sold >= 0", name="stock_sold_not_negative"),
    sa.CheckConstraint("available + reserved + sold = stocked", name="stock_units_accounted"),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

reservation_lines = sa.Table(
    "reservation_lines",
    metadata,
    sa.Column("order_id", sa.String(128), sa.ForeignKey("reservations.order_id"), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class Stock:
    sku: str
    available: int
    reserved: int
    sold: int
    stocked: int
    updated_at: str


@dataclass(frozen=True)
class Reservation:
    """What inventory did about one order."""

    order_id: str
    state: str
    code: str | None
    reason: str | None


@dataclass(frozen=True)
class Shortage:
    """Why an order's lines cannot all be reserved."""

    code: str
    reason: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- stock ------------------------------------------------------------------------------------


def find_stock(connection: sa.Connection, sku: str) -> Stock | None:
    row = connection.execute(sa.select(stock).where(stock.c.sku == sku)).first()
    return None if row is None else Stock(**row._mapping)


def set_available(connection: sa.Connection, sku: str, available: int) -> tuple[Stock, bool]:
    """Set how many units of `sku` can be reserved; reserved and sold units stay as they are.

    `stocked` moves by the same amount as `available`. Returns the stock and whether the sku
    is new.
    """
    update = (
        stock.update()
        .where(stock.c.sku == sku)
        .values(
            stocked=stock.c.stocked + available - stock.c.available,
            available=available,
            updated_at=now(),
        )
    )
    created = False
    if connection.execute(update).rowcount == 0:
        row = {
            "sku": sku,
            "available": available,
            "reserved": 0,
            "sold": 0,
            "stocked": available,
            "updated_at": now(),
        }
        created = insert_ignoring_duplicates(connection, stock, row)
        if not created:  # another request created the sku meanwhile: set it now
            connection.execute(update)
    found = find_stock(connection, sku)
    assert found is not None
    return found, created


def reserve(connection: sa.Connection, needs: Mapping[str, int]) -> Shortage | None:
    """Move `needs` (units by sku) from available to reserved, all of them or none.

    The stock rows are locked in sku order (PostgreSQL: FOR UPDATE) before anything is checked,
    so concurrent reservations of the same skus queue instead of overselling or deadlocking.
    """
    skus = sorted(needs)
    rows = connection.execute(
        sa.select(stock.c.sku, stock.c.available)
        .where(stock.c.sku.in_(skus))
        .order_by(stock.c.sku)
        .with_for_update()
    ).all()
    available = {row.sku: row.available for row in rows}
    unknown = [sku for sku in skus if sku not in available]
    if unknown:
        return Shortage("unknown_sku", f"no such sku: {', '.join(unknown)}")
    for sku in skus:
        if available[sku] < needs[sku]:
            return Shortage(
                "out_of_stock",
                f"not enough {sku}: {needs[sku]} requested, {available[sku]} available",
            )
    for sku in skus:
        _move(connection, sku, needs[sku], source=stock.c.available, target=stock.c.reserved)
    return None


def release(connection: sa.Connection, held: Mapping[str, int]) -> None:
    """Move units held for an order from reserved back to available."""
    for sku in sorted(held):
        _move(connection, sku, held[sku], source=stock.c.reserved, target=stock.c.available)


def sell(connection: sa.Connection, held: Mapping[str, int]) -> None:
    """Move units held for an order from reserved to sold."""
    for sku in sorted(held):
        _move(connection, sku, held[sku], source=stock.c.reserved, target=stock.c.sold)


def _move(
    connection: sa.Connection,
    sku: str,
    units: int,
    *,
    source: sa.Column[int],
    target: sa.Column[int],
) -> None:
    result = connection.execute(
        stock.update()
        .where(stock.c.sku == sku, source >= units)
        .values({source: source - units, target: target + units, stock.c.updated_at: now()})
    )
    if result.rowcount != 1:
        raise RuntimeError(f"cannot move {units} units of {sku!r} out of {source.name}")


# -- reservations -----------------------------------------------------------------------------


def claim_or_lock(connection: sa.Connection, order_id: str, state: str) -> Reservation | None:
    """Create the order's reservation in `state` and return None; or, when it exists, lock it
    and return it (on PostgreSQL a concurrent creator is waited for)."""
    row = {"order_id": order_id, "state": state, "updated_at": now()}
    if insert_ignoring_duplicates(connection, reservations, row):
        return None
    found = find_reservation(connection, order_id, lock=True)
    assert found is not None
    return found


def find_reservation(
    connection: sa.Connection, order_id: str, *, lock: bool = False
) -> Reservation | None:
    query = sa.select(
        reservations.c.order_id, reservations.c.state, reservations.c.code, reservations.c.reason
    ).where(reservations.c.order_id == order_id)
    found = connection.execute(query.with_for_update() if lock else query).first()
    if found is None:
        return None
    return Reservation(found.order_id, found.state, found.code, found.reason)


def set_state(
    connection: sa.Connection,
    order_id: str,
    state: str,
    *,
    code: str | None = None,
    reason: str | None = None,
) -> None:
    connection.execute(
        reservations.update()
        .where(reservations.c.order_id == order_id)
        .values(state=state, code=code, reason=reason, updated_at=now())
    )


def add_lines(connection: sa.Connection, order_id: str, held: Mapping[str, int]) -> None:
    connection.execute(
        reservation_lines.insert(),
        [{"order_id": order_id, "sku": sku, "quantity": held[sku]} for sku in sorted(held)],
    )


def lines_of(connection: sa.Connection, order_id: str) -> dict[str, int]:
    """The units held (or once held) for an order, by sku."""
    rows = connection.execute(
        sa.select(reservation_lines.c.sku, reservation_lines.c.quantity)
        .where(reservation_lines.c.order_id == order_id)
        .order_by(reservation_lines.c.sku)
    ).all()
    return {row.sku: row.quantity for row in rows}
