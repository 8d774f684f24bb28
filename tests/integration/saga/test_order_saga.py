"""The order saga through `shop up` of manifests/: real gunicorn services, the real broker.

Each test has its own customer and skus, so they share one `shop up` and stay independent.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from typing import Any

from tests.integration.saga.conftest import new_sku
from tests.integration.saga.story import (
    assert_invariants,
    assert_stock_adds_up,
    wait_for_stories,
    wait_for_story,
)
from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

PRICE = 450
PAYMENT_TRIGGER = "shop/payment-order-created"
# manifests/70-brokers.yaml: backoffDelay PT0.5S, exponential -> waits of 0.5 s, 1 s, 2 s ...
FIRST_BACKOFFS = (0.5, 1.0)
TOLERANCE = 0.1


def test_an_order_is_confirmed_the_stock_sold_and_the_customer_mailed(
    shop: ShopUp, client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("tea")
    client.set_stock(sku, 10)

    placed = client.place_order(customer["id"], [(sku, 2, PRICE)])
    assert placed["status"] == "pending" and placed["total"] == 2 * PRICE
    story = wait_for_story(client, placed["id"], after=journal_mark)

    assert story.order["status"] == "confirmed", story
    assert story.types() == {
        "order.created": 1,
        "inventory.reserved": 1,
        "payment.authorized": 1,
        "order.confirmed": 1,
        "notification.sent": 1,
    }, story
    assert_invariants(story)  # every event's subject is the order id, among others
    assert_stock_adds_up(client.stock(sku), stocked=10, sold=2)

    # The viewer, which gets every event, files exactly the story under the order id.
    def whole_timeline() -> list[dict[str, Any]] | None:
        timeline = client.timeline(placed["id"])
        return timeline if len(timeline) >= len(story.events) else None

    timeline = wait_for(whole_timeline, what="the order's timeline at the viewer")
    assert {event["id"] for event in timeline} == {event.id for event in story.events}

    # The mail went out over SMTP: the notification service lists it, the Maildir holds it.
    [sent] = client.notifications(placed["id"])
    assert sent["status"] == "sent" and sent["to"] == customer["email"]
    assert sent["cause"]["id"] in story.ids("order.confirmed")
    mail = wait_for(
        lambda: next((m for m in shop.mails() if m["Message-ID"] == sent["message_id"]), None),
        what=f"the mail {sent['message_id']} in the Maildir",
    )
    assert mail["To"] == customer["email"]
    assert mail["Subject"] == sent["mail_subject"] and placed["id"] in mail["Subject"]


def test_a_declined_payment_releases_the_reservation_and_cancels_the_order(
    client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("mug")
    client.set_stock(sku, 5)

    placed = client.place_order(customer["id"], [(sku, 2, PRICE)], token="tok_declined")
    story = wait_for_story(client, placed["id"], after=journal_mark)

    assert story.order["status"] == "cancelled", story
    assert story.order["code"] == "card_declined" and story.order["payment"] == "declined"
    assert story.types() == {
        "order.created": 1,
        "inventory.reserved": 1,
        "payment.declined": 1,
        "order.cancelled": 1,
        "inventory.released": 1,
        "notification.sent": 1,
    }, story
    [released] = story.of_type("inventory.released")
    assert released.data["lines"] == [{"sku": sku, "quantity": 2}]
    assert_invariants(story)
    assert_stock_adds_up(client.stock(sku), stocked=5, sold=0)  # all 5 available again
    [mail] = client.notifications(placed["id"])
    assert mail["cause"]["type"] == "order.cancelled" and mail["status"] == "sent"


def test_an_order_out_of_stock_voids_the_payment_and_is_cancelled(
    client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("kettle")
    client.set_stock(sku, 1)

    placed = client.place_order(customer["id"], [(sku, 3, PRICE)])
    story = wait_for_story(client, placed["id"], after=journal_mark)

    assert story.order["status"] == "cancelled", story
    assert story.order["code"] == "out_of_stock" and story.order["inventory"] == "rejected"
    # Payment authorised at once; the cancel reaches it three hops later (rejected -> order
    # -> cancelled) and voids that authorisation.
    assert story.types() == {
        "order.created": 1,
        "inventory.rejected": 1,
        "payment.authorized": 1,
        "order.cancelled": 1,
        "payment.voided": 1,
        "notification.sent": 1,
    }, story
    [authorized], [voided] = story.of_type("payment.authorized"), story.of_type("payment.voided")
    assert voided.data["authorization_id"] == authorized.data["authorization_id"]
    assert voided.data["amount"] == 3 * PRICE
    assert_invariants(story)
    assert_stock_adds_up(client.stock(sku), stocked=1, sold=0)


def test_a_transient_payment_failure_is_retried_by_the_broker_until_it_succeeds(
    client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("teapot")
    client.set_stock(sku, 3)

    # tok_transient: the test-mode processor is unavailable twice per order (payment answers
    # 503), then authorises.
    placed = client.place_order(customer["id"], [(sku, 1, PRICE)], token="tok_transient")
    story = wait_for_story(client, placed["id"], after=journal_mark)

    assert story.order["status"] == "confirmed", story
    assert_invariants(story)
    assert_stock_adds_up(client.stock(sku), stocked=3, sold=1)
    [created] = story.of_type("order.created")
    assert created.deliveries()[PAYMENT_TRIGGER] == {
        "trigger": PAYMENT_TRIGGER,
        "state": "delivered",
        "attempts": 3,
    }
    attempts = created.attempts(PAYMENT_TRIGGER)
    assert [(a["status"], a["outcome"]) for a in attempts] == [
        (503, "retry"),
        (503, "retry"),
        (200, "delivered"),  # 200: with the payment.authorized reply
    ], attempts
    assert attempts[-1]["reply_seq"] == story.of_type("payment.authorized")[0].seq
    # Each retry waited for the broker's back-off (docs/broker.md: Knative's formula).
    starts = [datetime.fromisoformat(a["time"]) for a in attempts]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(starts)]
    for gap, backoff in zip(gaps, FIRST_BACKOFFS, strict=True):
        assert gap >= backoff - TOLERANCE, attempts


def test_twenty_orders_racing_for_the_last_five_units_confirm_exactly_five(
    client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("lamp")
    client.set_stock(sku, 5)

    with ThreadPoolExecutor(max_workers=20) as pool:
        placed = list(
            pool.map(lambda _: client.place_order(customer["id"], [(sku, 1, PRICE)]), range(20))
        )
    stories = wait_for_stories(client, [order["id"] for order in placed], after=journal_mark)

    statuses = sorted(story.order["status"] for story in stories.values())
    assert statuses == ["cancelled"] * 15 + ["confirmed"] * 5, statuses
    for story in stories.values():
        assert_invariants(story)
        if story.order["status"] == "cancelled":
            assert story.order["code"] == "out_of_stock", story
    assert_stock_adds_up(client.stock(sku), stocked=5, sold=5)
    # One mail per order: five confirmations, fifteen cancellations.
    mails = [mail for story in stories.values() for mail in client.notifications(story.order_id)]
    causes = sorted(mail["cause"]["type"] for mail in mails)
    assert causes == ["order.cancelled"] * 15 + ["order.confirmed"] * 5
