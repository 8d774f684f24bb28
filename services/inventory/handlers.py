"""The inventory service's handlers: reserve on order.created, sell on order.confirmed,
release on order.cancelled.

Each order has one reservation row, whatever arrives first. A cancellation that arrives before
the order.created it refers to leaves a `cancelled` row, and the order.created is refused when it
comes. Any later order.created for the same order (a logical duplicate) gets the same answer as
the first one.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, NewEvent, RetryLater, Transaction
from services.inventory import store

log = logging.getLogger("shop.inventory")

handlers = HandlerSet()


@handlers.on("order.created")
def reserve_order(event: CloudEvent, tx: Transaction) -> NewEvent:
    """Reserve every line of the order or none; reply inventory.reserved or .rejected."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    existing = store.claim_or_lock(connection, order_id, store.NEW)
    if existing is not None:
        return _answer_again(connection, existing)
    needs: Counter[str] = Counter()
    for line in data["lines"]:
        needs[line["sku"]] += int(line["quantity"])
    shortage = store.reserve(connection, needs)
    if shortage is not None:
        store.set_state(
            connection, order_id, store.REJECTED, code=shortage.code, reason=shortage.reason
        )
        return _rejected(order_id, shortage.code, shortage.reason)
    store.add_lines(connection, order_id, needs)
    store.set_state(connection, order_id, store.RESERVED)
    return _reserved(order_id, needs)


@handlers.on("order.confirmed")
def sell_order(event: CloudEvent, tx: Transaction) -> None:
    """Turn the order's reservation into a sale."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    reservation = store.find_reservation(connection, order_id, lock=True)
    if reservation is None:
        # A confirmation follows our own inventory.reserved, so its order.created is on its way
        # (or this database lost it): let the broker bring this event back later.
        raise RetryLater(f"order {order_id!r} is confirmed but its order.created has not arrived")
    if reservation.state == store.RESERVED:
        store.sell(connection, store.lines_of(connection, order_id))
        store.set_state(connection, order_id, store.SOLD)
    elif reservation.state != store.SOLD:
        log.error(
            "order.confirmed for an order that holds no reservation: ignored",
            extra={"subject": order_id, "outcome": reservation.state},
        )


@handlers.on("order.cancelled")
def release_order(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Release what the order holds (inventory.released); remember a cancel that came first."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    reservation = store.claim_or_lock(connection, order_id, store.CANCELLED)
    if reservation is None or reservation.state != store.RESERVED:
        if reservation is not None and reservation.state == store.SOLD:
            log.error(
                "order.cancelled for an order already sold: ignored",
                extra={"subject": order_id, "outcome": "ignored"},
            )
        return None
    held = store.lines_of(connection, order_id)
    store.release(connection, held)
    store.set_state(connection, order_id, store.RELEASED)
    return NewEvent(
        "inventory.released", {"order_id": order_id, "lines": _lines(held)}, subject=order_id
    )


def _answer_again(connection: sa.Connection, reservation: store.Reservation) -> NewEvent:
    """The answer a logical duplicate of order.created gets: the first one's."""
    order_id = reservation.order_id
    if reservation.state in (store.RESERVED, store.SOLD, store.RELEASED):
        return _reserved(order_id, store.lines_of(connection, order_id))
    if reservation.state == store.CANCELLED:
        return _rejected(
            order_id,
            "order_cancelled",
            f"order {order_id} was cancelled before it reached inventory",
        )
    return _rejected(order_id, reservation.code or "out_of_stock", reservation.reason or "rejected")


def _reserved(order_id: str, held: dict[str, int] | Counter[str]) -> NewEvent:
    return NewEvent(
        "inventory.reserved", {"order_id": order_id, "lines": _lines(held)}, subject=order_id
    )


def _rejected(order_id: str, code: str, reason: str) -> NewEvent:
    return NewEvent(
        "inventory.rejected",
        {"order_id": order_id, "code": code, "reason": reason},
        subject=order_id,
    )


def _lines(held: dict[str, int] | Counter[str]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": held[sku]} for sku in sorted(held)]
