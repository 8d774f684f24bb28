"""The order saga on the RabbitMQBroker class: the chart's RabbitMQ render under `shop up`,
every event through RabbitMQ, the journal and the viewer fed as with the local broker."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from tests.integration.saga.conftest import new_sku
from tests.integration.saga.story import assert_invariants, assert_stock_adds_up, wait_for_story
from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

PRICE = 300
QUEUE_METRIC = "shop_broker_rabbitmq_queue_messages{"


def test_an_order_is_confirmed_through_rabbitmq_and_its_timeline_is_at_the_viewer(
    shop: ShopUp, client: ShopClient, customer: dict[str, Any]
) -> None:
    sku = new_sku("tea")
    client.set_stock(sku, 10)
    placed = client.place_order(customer["id"], [(sku, 2, PRICE)])
    story = wait_for_story(client, placed["id"], timeout=30)

    assert story.order["status"] == "confirmed", story
    assert story.types() == {
        "order.created": 1,
        "inventory.reserved": 1,
        "payment.authorized": 1,
        "order.confirmed": 1,
        "notification.sent": 1,
    }, story
    assert_invariants(story)
    assert_stock_adds_up(client.stock(sku), stocked=10, sold=2)
    # The Triggers' queues are on RabbitMQ: the broker reports their depth.
    base = urlsplit(shop.broker_url)
    metrics = requests.get(f"{base.scheme}://{base.netloc}/metrics", timeout=5).text
    depths = [line for line in metrics.splitlines() if line.startswith(QUEUE_METRIC)]
    assert any('trigger="shop/payment-order-created"' in line for line in depths), metrics

    def whole_timeline() -> list[dict[str, Any]] | None:
        timeline = client.timeline(placed["id"])
        return timeline if len(timeline) >= len(story.events) else None

    timeline = wait_for(whole_timeline, what="the order's timeline at the viewer")
    assert {event["id"] for event in timeline} == {event.id for event in story.events}


def test_a_declined_payment_cancels_the_order_through_rabbitmq(
    client: ShopClient, customer: dict[str, Any]
) -> None:
    sku = new_sku("mug")
    client.set_stock(sku, 5)
    placed = client.place_order(customer["id"], [(sku, 2, PRICE)], token="tok_declined")
    story = wait_for_story(client, placed["id"], timeout=30)

    assert story.order["status"] == "cancelled", story
    assert story.order["code"] == "card_declined"
    assert story.types() == {
        "order.created": 1,
        "inventory.reserved": 1,
        "payment.declined": 1,
        "order.cancelled": 1,
        "inventory.released": 1,
        "notification.sent": 1,
    }, story
    assert_invariants(story)
    assert_stock_adds_up(client.stock(sku), stocked=5, sold=0)
