"""One order's story in the broker's journal, waited for until it is over, and its invariants.

The invariants are those of docs/services.md, checked from outside: every order ends confirmed
or cancelled; no order is charged twice; a cancelled order holds no reservation and no
authorisation; one mail per order outcome; every saga event's subject and partitionkey are the
order id (whatever the broker's class, so that a Kafka broker keeps them in order); nothing
the broker accepted for the order was dead-lettered or left undelivered.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.support.shop_client import DECIDED, JournalEvent, ShopClient


@dataclass(frozen=True)
class OrderStory:
    """An order as the order service shows it, and every event it caused, oldest first."""

    order: dict[str, Any]
    events: list[JournalEvent]

    @property
    def order_id(self) -> str:
        return str(self.order["id"])

    def of_type(self, event_type: str) -> list[JournalEvent]:
        return [event for event in self.events if event.type == event_type]

    def ids(self, event_type: str) -> set[str]:
        """The distinct event ids of a type (a redelivered reply keeps its id)."""
        return {event.id for event in self.of_type(event_type)}

    def types(self) -> Counter[str]:
        """How many distinct events of each type the story has."""
        return Counter({t: len(self.ids(t)) for t in {event.type for event in self.events}})

    def unfinished(self) -> list[str]:
        """What the story still waits for; empty once it is over."""
        missing = []
        if self.order["status"] not in DECIDED:
            missing.append(f"the order is {self.order['status']}")
        types = self.types()
        wanted = ["order.created", "notification.sent"]
        wanted.append("inventory.reserved" if types["inventory.reserved"] else "inventory.rejected")
        wanted.append("payment.authorized" if types["payment.authorized"] else "payment.declined")
        if self.order["status"] == "confirmed":
            wanted.append("order.confirmed")
        elif self.order["status"] == "cancelled":
            wanted.append("order.cancelled")
            if types["inventory.reserved"]:
                wanted.append("inventory.released")
            if types["payment.authorized"]:
                wanted.append("payment.voided")
        missing.extend(f"no {t}" for t in wanted if not types[t])
        missing.extend(
            f"{event.type} (seq {event.seq}) to {trigger}: {delivery['state']}"
            for event in self.events
            for trigger, delivery in event.deliveries().items()
            if delivery["state"] != "delivered"
        )
        return missing

    def __str__(self) -> str:
        lines = [f"order {self.order_id}: {self.order['status']} ({self.order.get('code')})"]
        lines.extend(f"  {event!r}" for event in self.events)
        return "\n".join(lines)


def wait_for_story(
    client: ShopClient, order_id: str, *, after: int = 0, timeout: float = 20.0
) -> OrderStory:
    """Poll until the order is decided and everything it caused was delivered; fail with the
    story as last seen."""
    deadline = time.monotonic() + timeout
    while True:
        story = OrderStory(client.order(order_id), client.story(order_id, after))
        missing = story.unfinished()
        if not missing:
            return story
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the saga of order {order_id} is not over after {timeout}s: {missing}\n{story}"
            )
        time.sleep(0.1)


def wait_for_stories(
    client: ShopClient, order_ids: Iterable[str], *, after: int = 0, timeout: float = 20.0
) -> dict[str, OrderStory]:
    """`wait_for_story` for many orders, sharing one deadline."""
    deadline = time.monotonic() + timeout
    return {
        order_id: wait_for_story(
            client, order_id, after=after, timeout=max(deadline - time.monotonic(), 0.5)
        )
        for order_id in order_ids
    }


def assert_invariants(story: OrderStory) -> None:
    """The saga's invariants for one finished order (see the module's docstring)."""
    order_id, status = story.order_id, story.order["status"]
    assert status in DECIDED, story
    wrong_subject = [event for event in story.events if event.subject != order_id]
    assert not wrong_subject, f"events of order {order_id} with another subject: {wrong_subject}"
    unkeyed = [event for event in story.events if event.partition_key != order_id]
    assert not unkeyed, f"events of order {order_id} without it as partitionkey: {unkeyed}"
    assert all(event.data["order_id"] == order_id for event in story.events if _about_order(event))

    # Charged at most once: one authorisation decision, one authorisation id.
    authorized = story.of_type("payment.authorized")
    assert len(story.ids("payment.authorized")) <= 1, story
    assert len({event.data["authorization_id"] for event in authorized}) <= 1, story
    # Decided once, mailed once.
    assert len(story.ids("order.confirmed")) + len(story.ids("order.cancelled")) == 1, story
    assert len(story.ids("notification.sent")) == 1, story

    if status == "confirmed":
        assert story.order["inventory"] == "reserved" and story.order["payment"] == "authorized"
        assert not story.of_type("payment.voided") and not story.of_type("inventory.released")
    else:
        # Nothing held for a cancelled order: a hold was given back.
        if authorized:
            voided = story.of_type("payment.voided")
            assert voided, f"order {order_id} was cancelled but its authorisation stays\n{story}"
            assert voided[0].data["authorization_id"] == authorized[0].data["authorization_id"]
        if story.of_type("inventory.reserved"):
            assert story.of_type("inventory.released"), (
                f"order {order_id} was cancelled but its reservation stays\n{story}"
            )


def assert_stock_adds_up(stock: dict[str, Any], *, stocked: int, sold: int) -> None:
    """available + reserved + sold = stocked, nothing left reserved, and `sold` sold."""
    assert stock["available"] + stock["reserved"] + stock["sold"] == stock["stocked"], stock
    assert stock == {
        **stock,
        "stocked": stocked,
        "reserved": 0,
        "sold": sold,
        "available": stocked - sold,
    }


def _about_order(event: JournalEvent) -> bool:
    return event.type != "notification.sent"
