"""The payment service's handlers: authorise on order.created, void on order.cancelled.

Each order has one payment row, whatever arrives first, so an order is authorised at most once:
a logical duplicate of order.created gets the first answer again, and a cancellation that
arrives before its order.created leaves a `cancelled` row that refuses the order when it comes.
"""

from __future__ import annotations

from typing import Any

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, NewEvent, RetryLater, Transaction
from services.payment import store
from services.payment.processor import CARD_PROCESSOR, Declined, ProcessorUnavailable

handlers = HandlerSet()


@handlers.on("order.created")
def authorize_order(event: CloudEvent, tx: Transaction) -> NewEvent:
    """Authorise the order's total; reply payment.authorized or payment.declined."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    existing = store.claim_or_lock(connection, order_id, store.NEW)
    if existing is not None:
        return _answer_again(existing)
    amount, currency = int(data["total"]), str(data["currency"])
    try:
        result = tx.resource(CARD_PROCESSOR).authorize(
            key=order_id, token=str(data["payment_token"]), amount=amount, currency=currency
        )
    except ProcessorUnavailable as error:
        # The claim rolls back with this transaction: the broker's retry starts afresh.
        raise RetryLater(f"card processor unavailable: {error}") from error
    if isinstance(result, Declined):
        store.update_payment(
            connection,
            order_id,
            store.DECLINED,
            amount=amount,
            currency=currency,
            code=result.code,
            reason=result.reason,
        )
        return _declined(order_id, result.code, result.reason)
    store.update_payment(
        connection,
        order_id,
        store.AUTHORIZED,
        authorization_id=result.authorization_id,
        amount=amount,
        currency=currency,
    )
    return _authorized("payment.authorized", order_id, result.authorization_id, amount, currency)


@handlers.on("order.cancelled")
def void_order(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Void the order's authorisation (payment.voided); remember a cancel that came first."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    order_id = str(data["order_id"])
    connection = tx.connection
    payment = store.claim_or_lock(connection, order_id, store.CANCELLED)
    if payment is None or payment.state != store.AUTHORIZED:
        return None
    assert payment.authorization_id is not None
    assert payment.amount is not None and payment.currency is not None
    try:
        tx.resource(CARD_PROCESSOR).void(payment.authorization_id)
    except ProcessorUnavailable as error:
        raise RetryLater(f"card processor unavailable: {error}") from error
    store.set_state(connection, order_id, store.VOIDED)
    return _authorized(
        "payment.voided", order_id, payment.authorization_id, payment.amount, payment.currency
    )


def _answer_again(payment: store.Payment) -> NewEvent:
    """The answer a logical duplicate of order.created gets: the first one's."""
    order_id = payment.order_id
    if payment.state in (store.AUTHORIZED, store.VOIDED):
        assert payment.authorization_id is not None
        assert payment.amount is not None and payment.currency is not None
        return _authorized(
            "payment.authorized",
            order_id,
            payment.authorization_id,
            payment.amount,
            payment.currency,
        )
    if payment.state == store.CANCELLED:
        return _declined(
            order_id, "order_cancelled", f"order {order_id} was cancelled before it reached payment"
        )
    return _declined(order_id, payment.code or "card_declined", payment.reason or "declined")


def _authorized(
    event_type: str, order_id: str, authorization_id: str, amount: int, currency: str
) -> NewEvent:
    return NewEvent(
        event_type,
        {
            "order_id": order_id,
            "authorization_id": authorization_id,
            "amount": amount,
            "currency": currency,
        },
        subject=order_id,
    )


def _declined(order_id: str, code: str, reason: str) -> NewEvent:
    return NewEvent(
        "payment.declined", {"order_id": order_id, "code": code, "reason": reason}, subject=order_id
    )
