"""The order service's handlers: each inventory and payment outcome moves an order's saga on.

An order is decided by the first outcome of each step: any negative one cancels it at once
(`order.cancelled`, which makes the other services compensate), two positive ones confirm it
(`order.confirmed`). A decided order never changes again: later outcomes, logical duplicates
included, are recorded as seen and change nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, NewEvent, Transaction
from services.order import store

log = logging.getLogger("shop.order")

handlers = HandlerSet()


@dataclass(frozen=True)
class Outcome:
    """What one step (inventory or payment) said about an order."""

    step: str
    result: str
    positive: bool


@handlers.on("inventory.reserved")
def inventory_reserved(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    return settle(event, tx, Outcome("inventory", "reserved", positive=True))


@handlers.on("inventory.rejected")
def inventory_rejected(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    return settle(event, tx, Outcome("inventory", "rejected", positive=False))


@handlers.on("payment.authorized")
def payment_authorized(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    return settle(event, tx, Outcome("payment", "authorized", positive=True))


@handlers.on("payment.declined")
def payment_declined(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    return settle(event, tx, Outcome("payment", "declined", positive=False))


def settle(event: CloudEvent, tx: Transaction, outcome: Outcome) -> NewEvent | None:
    """Record an outcome for its order and reply with the decision it completes, if any."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    store.record_event(
        connection,
        order_id,
        "received",
        event_type=event.get_type(),
        event_id=event.get_id(),
        source=event.get_source(),
    )
    order = store.lock_order(connection, order_id)
    if order is None:
        return _cancel_unplaced(tx, order_id, event.get_type(), outcome)
    first = getattr(order, outcome.step)
    if first is not None:
        if first != outcome.result:
            log.warning(
                "conflicting %s outcome ignored: the order's first one stands",
                outcome.step,
                extra={"subject": order_id, "type": event.get_type(), "outcome": "ignored"},
            )
        return None
    if order.status != store.PENDING:
        # Decided already (a negative outcome of the other step); note it, change nothing.
        store.update_order(connection, order_id, **{outcome.step: outcome.result})
        return None
    if not outcome.positive:
        reason = f"{outcome.step}: {data['reason']}"
        store.update_order(
            connection,
            order_id,
            **{outcome.step: outcome.result},
            status=store.CANCELLED,
            code=data["code"],
            reason=reason,
        )
        return _reply(tx, "order.cancelled", _cancelled(order, data["code"], reason))
    other = order.payment if outcome.step == "inventory" else order.inventory
    if other is None:
        store.update_order(connection, order_id, **{outcome.step: outcome.result})
        return None
    store.update_order(
        connection, order_id, **{outcome.step: outcome.result}, status=store.CONFIRMED
    )
    return _reply(tx, "order.confirmed", _confirmed(order, store.lines_of(connection, order_id)))


def _cancel_unplaced(
    tx: Transaction, order_id: str, event_type: str, outcome: Outcome
) -> NewEvent | None:
    """Outcomes for an order this service never placed (an order.created from elsewhere).

    Its rows are written before its order.created can leave (outbox), so an unknown id was never
    placed here: cancel it, so that inventory and payment give back what they hold for it.
    """
    reason = f"the order service never placed order {order_id!r} ({event_type} received)"
    if not store.insert_unplaced_order(
        tx.connection, order_id, reason, outcome.step, outcome.result
    ):
        return None  # a concurrent outcome recorded and cancelled it first
    log.warning(
        "outcome for an order never placed here: cancelling it",
        extra={"subject": order_id, "type": event_type, "outcome": "cancelled"},
    )
    cancelled = {"order_id": order_id, "code": "unknown_order", "reason": reason}
    return _reply(tx, "order.cancelled", cancelled)


def _confirmed(order: store.Order, lines: list[store.Line]) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in lines
        ],
        "currency": order.currency,
        "total": order.total,
    }


def _cancelled(order: store.Order, code: str, reason: str) -> dict[str, Any]:
    data: dict[str, Any] = {"order_id": order.id, "code": code, "reason": reason}
    if order.placed:
        data.update(customer_id=order.customer_id, currency=order.currency, total=order.total)
    return data


def _reply(tx: Transaction, event_type: str, data: dict[str, Any]) -> NewEvent:
    """The decision event, recorded among the order's events under the id it will carry."""
    order_id = str(data["order_id"])
    event_id = str(uuid.uuid4())
    store.record_event(tx.connection, order_id, "sent", event_type=event_type, event_id=event_id)
    return NewEvent(event_type, data, subject=order_id, id=event_id)
