"""The notification service's handlers: a mail for each user.created, order.confirmed and
order.cancelled, stored to be sent (the mail outbox); sender.py sends it and emits
notification.sent.

One mail per thing that happened: each mail has an id (`<event type>/<subject id>`), unique in
the table, so a logical duplicate (another event id announcing the same thing) stores nothing.
A handler opens no connection to the mail server: the mail is stored `pending` in the handler's
transaction and the event is answered 202 at once; the sender is woken once that commits.
"""

from __future__ import annotations

import logging
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, NewEvent, RetryLater, Transaction
from kit.tracing import trace_id
from services.notification import store
from services.notification.mailer import MAILER
from services.notification.sender import MAIL_QUEUED

log = logging.getLogger("shop.notification")

handlers = HandlerSet()

# Currencies whose minor unit is not a hundredth (ISO 4217 exponent).
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}


@handlers.on("user.created")
def welcome_user(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Remember the user's address and store a welcome mail."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    recipient = store.Recipient(str(data["user_id"]), str(data["name"]), str(data["email"]))
    store.remember_recipient(tx.connection, recipient)
    body = (
        f"Hello {recipient.name},\n\n"
        f"welcome to the shop. Your customer id is {recipient.customer_id}.\n"
    )
    _store_mail(
        event,
        tx,
        recipient,
        subject_id=recipient.customer_id,
        mail_subject=f"Welcome, {recipient.name}",
        body=body,
    )
    return None


@handlers.on("order.confirmed")
def mail_confirmation(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Mail the customer that the order is confirmed, with its lines and total."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    recipient = _recipient(tx, str(data["customer_id"]), event)
    currency = str(data["currency"])
    lines = "".join(
        f"  {line['quantity']} x {line['sku']} at {_money(line['unit_price'], currency)}\n"
        for line in data["lines"]
    )
    body = (
        f"Hello {recipient.name},\n\n"
        f"your order {data['order_id']} is confirmed:\n\n{lines}\n"
        f"Total: {_money(data['total'], currency)}\n"
    )
    _store_mail(
        event,
        tx,
        recipient,
        subject_id=str(data["order_id"]),
        mail_subject=f"Order {data['order_id']} is confirmed",
        body=body,
    )
    return None


@handlers.on("order.cancelled")
def mail_cancellation(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Mail the customer that the order was cancelled, and why."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    if "customer_id" not in data:
        log.info(
            "order.cancelled without a customer (never placed): nobody to mail",
            extra={"subject": data["order_id"], "outcome": "no_recipient"},
        )
        return None
    recipient = _recipient(tx, str(data["customer_id"]), event)
    body = (
        f"Hello {recipient.name},\n\n"
        f"your order {data['order_id']} was cancelled: {data['reason']}.\n"
        "Nothing was charged.\n"
    )
    _store_mail(
        event,
        tx,
        recipient,
        subject_id=str(data["order_id"]),
        mail_subject=f"Order {data['order_id']} was cancelled",
        body=body,
    )
    return None


def _recipient(tx: Transaction, customer_id: str, event: CloudEvent) -> store.Recipient:
    recipient = store.find_recipient(tx.connection, customer_id)
    if recipient is None:
        # Its user.created has not arrived yet (events travel in any order): come back later.
        raise RetryLater(
            f"no address for customer {customer_id!r} yet ({event.get_type()} waits for its"
            " user.created)"
        )
    return recipient


def _store_mail(
    event: CloudEvent,
    tx: Transaction,
    recipient: store.Recipient,
    *,
    subject_id: str,
    mail_subject: str,
    body: str,
) -> None:
    """Store the mail to be sent (once per mail id) and wake the sender once it is committed."""
    notification_id = f"{event.get_type()}/{subject_id}"
    stored = store.store_mail(
        tx.connection,
        {
            "id": notification_id,
            "cause_type": event.get_type(),
            "cause_id": event.get_id(),
            "cause_source": event.get_source(),
            "subject": subject_id,
            "recipient": recipient.email,
            "mail_subject": mail_subject,
            "body": body,
            "message_id": tx.resource(MAILER).message_id(notification_id),
            # Only a valid one (what kit.tracing would continue), which fits the column.
            "traceparent": tx.traceparent if trace_id(tx.traceparent) else None,
        },
    )
    if stored:
        tx.after_commit(tx.resource(MAIL_QUEUED).set)
    # Else this mail is stored already, for an earlier event announcing the same thing.


def _money(minor_units: int, currency: str) -> str:
    """An amount in minor units as people read it: 1234 EUR -> 12.34 EUR."""
    exponent = _EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{minor_units} {currency}"
    whole, fraction = divmod(minor_units, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d} {currency}"
