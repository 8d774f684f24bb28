"""The notification service's handlers: a mail for each user.created, order.confirmed and
order.cancelled, then notification.sent.

Sent at most once per thing that happened: each mail has an id (`<event type>/<subject id>`),
unique in the table, so a logical duplicate (another event id announcing the same thing) sends
nothing. The row and the reply are written first and the SMTP send is the handler's last step:
if the server is unreachable the whole transaction rolls back and the broker retries (503).
The one window left is a crash (or a failed commit) after the server took the mail: the retry
then sends it again, with the same Message-ID, which mail clients treat as one message.
"""

from __future__ import annotations

import logging
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, NewEvent, RetryLater, Transaction
from services.notification import store
from services.notification.mailer import MAILER, Mail, MailRefused, MailUnavailable

log = logging.getLogger("shop.notification")

handlers = HandlerSet()

# Currencies whose minor unit is not a hundredth (ISO 4217 exponent).
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}


@handlers.on("user.created")
def welcome_user(event: CloudEvent, tx: Transaction) -> NewEvent | None:
    """Remember the user's address and send a welcome mail."""
    data: dict[str, Any] = event.get_data()  # type: ignore[assignment]
    recipient = store.Recipient(str(data["user_id"]), str(data["name"]), str(data["email"]))
    store.remember_recipient(tx.connection, recipient)
    body = (
        f"Hello {recipient.name},\n\n"
        f"welcome to the shop. Your customer id is {recipient.customer_id}.\n"
    )
    return _send(
        event,
        tx,
        recipient,
        subject_id=recipient.customer_id,
        mail_subject=f"Welcome, {recipient.name}",
        body=body,
    )


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
    return _send(
        event,
        tx,
        recipient,
        subject_id=str(data["order_id"]),
        mail_subject=f"Order {data['order_id']} is confirmed",
        body=body,
    )


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
    return _send(
        event,
        tx,
        recipient,
        subject_id=str(data["order_id"]),
        mail_subject=f"Order {data['order_id']} was cancelled",
        body=body,
    )


def _recipient(tx: Transaction, customer_id: str, event: CloudEvent) -> store.Recipient:
    recipient = store.find_recipient(tx.connection, customer_id)
    if recipient is None:
        # Its user.created has not arrived yet (events travel in any order): come back later.
        raise RetryLater(
            f"no address for customer {customer_id!r} yet ({event.get_type()} waits for its"
            " user.created)"
        )
    return recipient


def _send(
    event: CloudEvent,
    tx: Transaction,
    recipient: store.Recipient,
    *,
    subject_id: str,
    mail_subject: str,
    body: str,
) -> NewEvent | None:
    """Record the mail, send it as the last step, and reply notification.sent."""
    mailer = tx.resource(MAILER)
    notification_id = f"{event.get_type()}/{subject_id}"
    mail = Mail(recipient.email, mail_subject, body, mailer.message_id(notification_id))
    cause = {"type": event.get_type(), "id": event.get_id(), "source": event.get_source()}
    claimed = store.claim_notification(
        tx.connection,
        {
            "id": notification_id,
            "cause_type": cause["type"],
            "cause_id": cause["id"],
            "cause_source": cause["source"],
            "subject": subject_id,
            "recipient": mail.to,
            "mail_subject": mail.subject,
            "message_id": mail.message_id,
        },
    )
    if not claimed:
        return None  # this mail went out already, for an earlier event announcing the same thing
    try:
        mailer.send(mail)
    except MailUnavailable as error:
        raise RetryLater(str(error)) from error
    except MailRefused as error:
        log.warning(
            "mail refused by the server; not retried",
            extra={"subject": subject_id, "outcome": "refused", "error": str(error)},
        )
        store.mark_refused(tx.connection, notification_id, str(error))
        return None
    return NewEvent(
        "notification.sent",
        {
            "notification_id": notification_id,
            "cause": cause,
            "to": mail.to,
            "message_id": mail.message_id,
        },
        subject=subject_id,
    )


def _money(minor_units: int, currency: str) -> str:
    """An amount in minor units as people read it: 1234 EUR -> 12.34 EUR."""
    exponent = _EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{minor_units} {currency}"
    whole, fraction = divmod(minor_units, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d} {currency}"
