"""The payment service's table (one payment per order) and its queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from kit.database import insert_ignoring_duplicates

metadata = sa.MetaData()

# Payment states, by order id.
NEW = "new"  # claimed by the transaction handling order.created; never seen committed
AUTHORIZED = "authorized"
DECLINED = "declined"
VOIDED = "voided"
CANCELLED = "cancelled"  # order.cancelled arrived before order.created: refuse it when it comes

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("authorization_id", sa.String(200), nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Payment:
    """What payment did about one order."""

    order_id: str
    state: str
    authorization_id: str | None
    amount: int | None
    currency: str | None
    code: str | None
    reason: str | None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def claim_or_lock(connection: sa.Connection, order_id: str, state: str) -> Payment | None:
    """Create the order's payment in `state` and return None; or, when it exists, lock it and
    return it (on PostgreSQL a concurrent creator is waited for)."""
    row = {"order_id": order_id, "state": state, "updated_at": now()}
    if insert_ignoring_duplicates(connection, payments, row):
        return None
    found = find_payment(connection, order_id, lock=True)
    assert found is not None
    return found


def find_payment(connection: sa.Connection, order_id: str, *, lock: bool = False) -> Payment | None:
    query = sa.select(
        payments.c.order_id,
        payments.c.state,
        payments.c.authorization_id,
        payments.c.amount,
        payments.c.currency,
        payments.c.code,
        payments.c.reason,
    ).where(payments.c.order_id == order_id)
    row = connection.execute(query.with_for_update() if lock else query).first()
    return None if row is None else Payment(**row._mapping)


def update_payment(
    connection: sa.Connection,
    order_id: str,
    state: str,
    *,
    authorization_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> None:
    connection.execute(
        payments.update()
        .where(payments.c.order_id == order_id)
        .values(
            state=state,
            authorization_id=authorization_id,
            amount=amount,
            currency=currency,
            code=code,
            reason=reason,
            updated_at=now(),
        )
    )


def set_state(connection: sa.Connection, order_id: str, state: str) -> None:
    connection.execute(
        payments.update()
        .where(payments.c.order_id == order_id)
        .values(state=state, updated_at=now())
    )
