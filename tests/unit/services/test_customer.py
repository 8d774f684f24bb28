"""The customer service: POST /users, GET /users/<id>, user.created through the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.customer.app import create_app
from tests.unit.services.running_service import RunningService, kit_config


@pytest.fixture
def customer(database_url: str) -> Iterator[RunningService]:
    running = RunningService(create_app(kit_config("customer", database_url)))
    yield running
    running.close()


def register(customer: RunningService, **body: Any) -> Any:
    return customer.client.post("/users", json=body)


def test_registering_answers_201_with_the_user_and_its_location(customer: RunningService) -> None:
    response = register(customer, name="Ada Lovelace", email="ada@example.com")
    assert response.status_code == 201
    user = response.get_json()
    assert response.headers["Location"] == f"/users/{user['id']}"
    assert user["name"] == "Ada Lovelace" and user["email"] == "ada@example.com"
    shown = customer.client.get(response.headers["Location"])
    assert shown.status_code == 200 and shown.get_json() == user


def test_registering_emits_user_created_through_the_outbox(customer: RunningService) -> None:
    user = register(customer, name="Ada", email="ada@example.com").get_json()
    (event,) = customer.drain_outbox()
    assert event.type == "user.created"
    assert event.get("subject") == user["id"]
    assert event.get("source") == "/shop/customer"
    assert event.get("dataschema") == "urn:shop:schema:user.created"
    assert event.data is not None
    assert event.get("datacontenttype") == "application/json"
    assert json.loads(event.data) == {"user_id": user["id"], "name": "Ada", "email": user["email"]}


def test_an_email_registered_already_in_any_letter_case_is_a_409_and_no_event(
    customer: RunningService,
) -> None:
    assert register(customer, name="Ada", email="ada@example.com").status_code == 201
    customer.drain_outbox()
    again = register(customer, name="Other Ada", email="ADA@Example.com")
    assert again.status_code == 409
    assert again.get_json()["field"] == "email"
    assert customer.drain_outbox() == []


def test_concurrent_registrations_of_one_email_create_one_user(customer: RunningService) -> None:
    def attempt(number: int) -> int:
        client = customer.app.test_client()
        return client.post(
            "/users", json={"name": f"n{number}", "email": "x@example.com"}
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [201] + [409] * 7
    assert len(customer.drain_outbox()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com"}, "name"),
        ({"name": "", "email": "ada@example.com"}, "name"),
        ({"name": "   ", "email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "not-an-address"}, "email"),
        ({"name": "Ada", "email": "ada@localhost"}, "email"),
        ({"name": "Ada", "email": "ada@example.com", "admin": True}, "admin"),
        ({"name": "Ada\n", "email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "ada@example.com\n"}, "email"),
        ({"name": 7, "email": "ada@example.com"}, "name"),
    ],
)
def test_an_invalid_user_is_a_400_naming_the_field(
    customer: RunningService, body: dict[str, Any], field: str | None
) -> None:
    response = customer.client.post("/users", json=body)
    assert response.status_code == 400
    assert response.get_json().get("field") == field
    assert customer.drain_outbox() == []


def test_a_body_that_is_not_json_is_a_415_or_400(customer: RunningService) -> None:
    assert customer.client.post("/users", data="name=Ada").status_code == 415
    response = customer.client.post(
        "/users", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_an_unknown_user_is_a_404(customer: RunningService) -> None:
    response = customer.client.get("/users/nobody")
    assert response.status_code == 404
    assert "nobody" in response.get_json()["error"]


def test_customer_consumes_no_events(customer: RunningService) -> None:
    delivery = customer.send("order.created", {"order_id": "o-1"})
    assert delivery.status == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 100_000, "email": "ada@example.com"}, "name"),
        ({"name": "Ada", "email": "ada@example.com", "x" * 100_000: 1}, "x" * 40 + "..."),
        ({"name": "\ud800", "email": "ada@example.com"}, "name"),
    ],
    ids=["long-name", "long-key", "lone-surrogate"],
)
def test_an_error_names_the_field_in_a_short_body(
    customer: RunningService, body: dict[str, Any], field: str | None
) -> None:
    response = customer.client.post(
        "/users", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert len(response.data) < 300, response.data[:300]
    assert response.get_json().get("field") == field


def test_deeply_nested_json_is_a_400_naming_the_depth_limit(customer: RunningService) -> None:
    body = (
        '{"name": "Ada", "email": "ada@example.com", "extra": '
        + "[" * 100_000
        + "]" * 100_000
        + "}"
    )
    response = customer.client.post(
        "/users", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "64 levels" in response.get_json()["error"]
