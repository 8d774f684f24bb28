"""`POST /orders` and `POST /users` with an Idempotency-Key: a retry replays the first answer and
emits nothing more; without a key, posting twice is two requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.customer.app import create_app as create_customer
from services.order.app import create_app as create_order
from tests.unit.services.running_service import RunningService, kit_config

ORDER = {
    "customer_id": "c-1",
    "lines": [{"sku": "tea-green", "quantity": 2, "unit_price": 450}],
    "currency": "EUR",
    "payment_token": "tok_ok",
}


@pytest.fixture
def order(database_url: str) -> Iterator[RunningService]:
    running = RunningService(create_order(kit_config("order", database_url)))
    yield running
    running.close()


@pytest.fixture
def customer(database_url: str) -> Iterator[RunningService]:
    running = RunningService(create_customer(kit_config("customer", database_url)))
    yield running
    running.close()


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retried_order_is_placed_once_and_gets_the_first_answer(order: RunningService) -> None:
    first = order.client.post("/orders", json=ORDER, headers=keyed('"order-attempt-1"'))
    assert first.status_code == 201
    retry = order.client.post("/orders", json=ORDER, headers=keyed('"order-attempt-1"'))
    assert retry.status_code == 201
    assert retry.get_data() == first.get_data()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    events = order.drain_outbox()
    assert [event.type for event in events] == ["order.created"]
    assert events[0].get("subject") == first.get_json()["id"]


def test_an_order_key_reused_for_another_order_is_422_and_places_nothing(
    order: RunningService,
) -> None:
    assert order.client.post("/orders", json=ORDER, headers=keyed("k")).status_code == 201
    order.drain_outbox()
    other = {**ORDER, "lines": [{"sku": "tea-green", "quantity": 3, "unit_price": 450}]}
    refused = order.client.post("/orders", json=other, headers=keyed("k"))
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "Idempotency-Key"
    assert order.drain_outbox() == []


def test_the_same_order_twice_without_a_key_is_two_orders(order: RunningService) -> None:
    first, second = (order.client.post("/orders", json=ORDER) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["id"] != second.get_json()["id"]
    assert [event.type for event in order.drain_outbox()] == ["order.created"] * 2


def test_a_retried_registration_gets_the_user_not_a_409(customer: RunningService) -> None:
    user = {"name": "Ada", "email": "ada@example.com"}
    first = customer.client.post("/users", json=user, headers=keyed("signup-1"))
    retry = customer.client.post("/users", json=user, headers=keyed("signup-1"))
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert [event.type for event in customer.drain_outbox()] == ["user.created"]
    # Under another key it is another registration, of an address that is taken.
    taken = customer.client.post("/users", json=user, headers=keyed("signup-2"))
    assert taken.status_code == 409
    assert taken.get_json()["field"] == "email"
    assert "Idempotent-Replayed" not in taken.headers
