"""A service SIGKILLed while orders are in flight: `shop up` restarts it and every saga completes.

The kill takes the service's whole process group (gunicorn's master and its worker, as when a
container is OOM-killed), so a request it was handling dies with it. What must hold afterwards:
every order confirmed, each authorised once, the stock sold exactly once, one mail per order,
every event the broker accepted delivered and nothing dead-lettered.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest

from tests.integration.saga.conftest import new_sku
from tests.integration.saga.story import assert_invariants, assert_stock_adds_up, wait_for_stories
from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

PRICE = 450
ORDERS = 6
PAYMENT_TRIGGER = "shop/payment-order-created"
# The broker retries a delivery for 15.5 s at most (manifests/70-brokers.yaml: 5 retries,
# exponential from 0.5 s).
SAGA_TIMEOUT = 30.0


def kill(shop: ShopUp, victim: str) -> tuple[int, int]:
    """SIGKILL the victim's process group; once `shop up` has seen it die, the index of that
    line and the old pid."""
    pid = shop.pid_of(victim)
    after = len(shop.lines())
    os.killpg(pid, signal.SIGKILL)
    died, _ = shop.wait_for_line(
        rf"^shop up: {re.escape(victim)} was killed by SIGKILL after", after=after
    )
    return died, pid


def wait_restarted(shop: ShopUp, victim: str, died: int, old_pid: int) -> None:
    shop.wait_for_line(rf"^shop up: {re.escape(victim)} is ready again \(pid \d+", after=died)
    assert shop.pid_of(victim) != old_pid


def assert_all_confirmed_once(
    client: ShopClient, stories: dict[str, Any], sku: str, customer: dict[str, Any]
) -> None:
    for story in stories.values():
        assert story.order["status"] == "confirmed", story
        assert_invariants(story)  # authorised once, decided once, mailed once, all delivered
        assert client.dead_letters(story.order_id) == []
        [mail] = client.notifications(story.order_id)
        assert mail["status"] == "sent" and mail["to"] == customer["email"]
    assert_stock_adds_up(client.stock(sku), stocked=2 * ORDERS, sold=ORDERS)


@pytest.mark.parametrize("victim", ["inventory", "payment"])
def test_a_consumer_killed_mid_flow_is_restarted_and_the_broker_delivers_what_it_missed(
    shop: ShopUp,
    client: ShopClient,
    customer: dict[str, Any],
    journal_mark: int,
    victim: str,
) -> None:
    sku = new_sku(f"crash-{victim}")
    client.set_stock(sku, 2 * ORDERS)
    trigger = f"shop/{victim}-order-created"

    # Half the orders are placed before the kill (some are being handled when it lands), half
    # while the victim is down: their order.created cannot reach it until it is back.
    before = [client.place_order(customer["id"], [(sku, 1, PRICE)]) for _ in range(ORDERS // 2)]
    died, old_pid = kill(shop, victim)
    during = [client.place_order(customer["id"], [(sku, 1, PRICE)]) for _ in range(ORDERS // 2)]
    wait_restarted(shop, victim, died, old_pid)

    order_ids = [order["id"] for order in before + during]
    stories = wait_for_stories(client, order_ids, after=journal_mark, timeout=SAGA_TIMEOUT)
    assert_all_confirmed_once(client, stories, sku, customer)
    # The broker found the victim gone and retried until the restarted process took the event.
    for order in during:
        [created] = stories[order["id"]].of_type("order.created")
        attempts = created.attempts(trigger)
        assert attempts[0]["status"] is None and attempts[0]["outcome"] == "retry", attempts
        assert attempts[-1]["outcome"] == "delivered", attempts


def test_the_order_service_killed_while_its_orders_are_pending_decides_them_after_restart(
    shop: ShopUp, client: ShopClient, customer: dict[str, Any], journal_mark: int
) -> None:
    sku = new_sku("crash-order")
    client.set_stock(sku, 2 * ORDERS)

    # tok_transient: payment answers 503 twice per order, and the broker retries after 0.5 s
    # and then after 1 s. Once every order's second attempt failed, the order service dies: its
    # orders are pending (inventory's answer is in, payment's is not), and payment's answer
    # comes back within a second, before `shop up` restarts it (1 s, then gunicorn's boot).
    placed = [
        client.place_order(customer["id"], [(sku, 1, PRICE)], token="tok_transient")
        for _ in range(ORDERS)
    ]
    order_ids = [order["id"] for order in placed]
    wait_for(
        lambda: all(
            created.deliveries()[PAYMENT_TRIGGER]["attempts"] >= 2
            for order_id in order_ids
            for created in client.story(order_id, journal_mark)
            if created.type == "order.created"
        ),
        what="payment's second failed attempt at every order",
    )
    waiting = [client.order(order_id) for order_id in order_ids]
    assert all(o["status"] == "pending" and o["payment"] is None for o in waiting), waiting
    died, old_pid = kill(shop, "order")
    wait_restarted(shop, "order", died, old_pid)

    stories = wait_for_stories(client, order_ids, after=journal_mark, timeout=SAGA_TIMEOUT)
    assert_all_confirmed_once(client, stories, sku, customer)
    # payment's answer found the order service gone; the broker retried until it was back.
    for story in stories.values():
        [authorized] = story.of_type("payment.authorized")
        attempts = authorized.attempts("shop/order-payment-authorized")
        assert attempts[0]["status"] is None and attempts[0]["outcome"] == "retry", attempts
        assert attempts[-1]["outcome"] == "delivered", attempts
