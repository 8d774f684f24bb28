"""The order service: placing orders, and deciding them from outcomes arriving in any order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.order import store
from services.order.app import create_app
from tests.unit.services.running_service import Delivery, RunningService, kit_config

ORDER = {
    "customer_id": "c-1",
    "lines": [
        {"sku": "tea-green", "quantity": 2, "unit_price": 450},
        {"sku": "mug-blue", "quantity": 1, "unit_price": 1200},
    ],
    "currency": "EUR",
    "payment_token": "tok_ok",
}
RESERVED = ("inventory.reserved", "/shop/inventory")
REJECTED = ("inventory.rejected", "/shop/inventory")
AUTHORIZED = ("payment.authorized", "/shop/payment")
DECLINED = ("payment.declined", "/shop/payment")


@pytest.fixture
def order(database_url: str) -> Iterator[RunningService]:
    running = RunningService(create_app(kit_config("order", database_url)))
    yield running
    running.close()


def place(order: RunningService, **changes: Any) -> str:
    response = order.client.post("/orders", json={**ORDER, **changes})
    assert response.status_code == 201, response.get_json()
    order.drain_outbox()
    return str(response.get_json()["id"])


def outcome(order: RunningService, kind: tuple[str, str], order_id: str, **data: Any) -> Delivery:
    event_type, source = kind
    payload: dict[str, Any] = {"order_id": order_id}
    if event_type == "inventory.reserved":
        payload["lines"] = [{"sku": "mug-blue", "quantity": 1}, {"sku": "tea-green", "quantity": 2}]
    elif event_type == "payment.authorized":
        payload.update(authorization_id="auth_1", amount=2100, currency="EUR")
    elif event_type == "inventory.rejected":
        payload.update(code="out_of_stock", reason="not enough mug-blue")
    else:
        payload.update(code="card_declined", reason="the card was declined")
    payload.update(data)
    return order.send(event_type, payload, subject=order_id, source=source)


def status(order: RunningService, order_id: str) -> dict[str, Any]:
    response = order.client.get(f"/orders/{order_id}")
    assert response.status_code == 200
    return dict(response.get_json())


# -- the HTTP API -------------------------------------------------------------------------------


def test_placing_an_order_answers_201_pending_with_its_location(order: RunningService) -> None:
    response = order.client.post("/orders", json=ORDER)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/orders/{body['id']}"
    assert body["status"] == "pending"
    assert body["total"] == 2 * 450 + 1200
    assert body["lines"] == ORDER["lines"]
    assert [e["type"] for e in body["events"]] == ["order.created"]
    assert status(order, body["id"]) == body


def test_placing_an_order_emits_order_created_with_what_consumers_need(
    order: RunningService,
) -> None:
    body = order.client.post("/orders", json=ORDER).get_json()
    (event,) = order.drain_outbox()
    assert event.type == "order.created"
    assert event.get("subject") == event.get("partitionkey") == body["id"]
    assert event.get("dataschema") == "urn:shop:schema:order.created"
    assert event.id == body["events"][0]["id"]
    assert event.data is not None
    assert json.loads(event.data) == {
        "order_id": body["id"],
        "customer_id": "c-1",
        "lines": ORDER["lines"],
        "currency": "EUR",
        "total": 2100,
        "payment_token": "tok_ok",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "tea", "quantity": 0, "unit_price": 1}]}, "lines/0/quantity"),
        ({"lines": [{"sku": "tea", "quantity": 1, "unit_price": 4.5}]}, "lines/0/unit_price"),
        ({"lines": [{"sku": "tea", "quantity": 1, "unit_price": -1}]}, "lines/0/unit_price"),
        ({"lines": [{"sku": "te a", "quantity": 1, "unit_price": 1}]}, "lines/0/sku"),
        (
            {
                "lines": [
                    {"sku": "tea", "quantity": 1, "unit_price": 1},
                    {"sku": "tea", "quantity": 2, "unit_price": 1},
                ]
            },
            "lines/1/sku",
        ),
        ({"currency": "eur"}, "currency"),
        ({"payment_token": ""}, "payment_token"),
        ({"coupon": "FREE"}, "coupon"),
        ({"currency": "EUR\n"}, "currency"),
        ({"payment_token": "tok\u0000"}, "payment_token"),
    ],
)
def test_an_invalid_order_is_a_400_naming_the_field_and_emits_nothing(
    order: RunningService, changes: dict[str, Any], field: str | None
) -> None:
    response = order.client.post("/orders", json={**ORDER, **changes})
    assert response.status_code == 400
    assert response.get_json().get("field") == field
    assert order.drain_outbox() == []


def test_an_order_without_a_json_body_is_a_415(order: RunningService) -> None:
    assert order.client.post("/orders", data="x").status_code == 415


def test_an_unknown_order_is_a_404(order: RunningService) -> None:
    assert order.client.get("/orders/nope").status_code == 404


def test_a_whole_number_given_as_2_0_is_stored_as_an_integer(order: RunningService) -> None:
    lines = [{"sku": "tea", "quantity": 2.0, "unit_price": 450}]
    body = order.client.post("/orders", json={**ORDER, "lines": lines}).get_json()
    assert body["lines"] == [{"sku": "tea", "quantity": 2, "unit_price": 450}]
    assert body["total"] == 900


# -- deciding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [RESERVED, AUTHORIZED])
def test_two_positive_outcomes_in_either_order_confirm_the_order(
    order: RunningService, first: tuple[str, str]
) -> None:
    order_id = place(order)
    second = AUTHORIZED if first == RESERVED else RESERVED
    assert outcome(order, first, order_id).status == 202
    decided = outcome(order, second, order_id)
    assert decided.status == 200
    assert decided.reply_type == "order.confirmed"
    assert decided.reply is not None and decided.reply.get("subject") == order_id
    assert decided.reply.get("partitionkey") == order_id
    assert decided.reply_data == {
        "order_id": order_id,
        "customer_id": "c-1",
        "lines": ORDER["lines"],
        "currency": "EUR",
        "total": 2100,
    }
    shown = status(order, order_id)
    assert (shown["status"], shown["inventory"], shown["payment"]) == (
        "confirmed",
        "reserved",
        "authorized",
    )
    assert [(e["direction"], e["type"]) for e in shown["events"]] == [
        ("sent", "order.created"),
        ("received", first[0]),
        ("received", second[0]),
        ("sent", "order.confirmed"),
    ]
    assert shown["events"][-1]["id"] == decided.reply.id
    assert [e["source"] for e in shown["events"]] == [
        "/shop/order",
        first[1],
        second[1],
        "/shop/order",
    ]


@pytest.mark.parametrize(
    ("negative", "code"), [(REJECTED, "out_of_stock"), (DECLINED, "card_declined")]
)
def test_a_negative_outcome_cancels_at_once_with_its_reason(
    order: RunningService, negative: tuple[str, str], code: str
) -> None:
    order_id = place(order)
    decided = outcome(order, negative, order_id, code=code, reason="no luck")
    assert decided.reply_type == "order.cancelled"
    assert decided.reply_data == {
        "order_id": order_id,
        "customer_id": "c-1",
        "code": code,
        "reason": f"{negative[0].split('.')[0]}: no luck",
        "currency": "EUR",
        "total": 2100,
    }
    shown = status(order, order_id)
    assert (shown["status"], shown["code"]) == ("cancelled", code)
    assert shown["reason"].endswith("no luck")


@pytest.mark.parametrize(
    ("first", "late"),
    [(REJECTED, AUTHORIZED), (DECLINED, RESERVED), (REJECTED, DECLINED), (DECLINED, REJECTED)],
)
def test_an_outcome_after_the_decision_changes_nothing_and_sends_nothing(
    order: RunningService, first: tuple[str, str], late: tuple[str, str]
) -> None:
    order_id = place(order)
    assert outcome(order, first, order_id).reply_type == "order.cancelled"
    assert outcome(order, late, order_id).status == 202
    shown = status(order, order_id)
    assert shown["status"] == "cancelled"
    assert shown["code"] == ("out_of_stock" if first == REJECTED else "card_declined")
    assert shown["inventory"] is not None and shown["payment"] is not None


def test_a_confirmed_order_stays_confirmed_whatever_arrives_later(order: RunningService) -> None:
    order_id = place(order)
    outcome(order, RESERVED, order_id)
    assert outcome(order, AUTHORIZED, order_id).reply_type == "order.confirmed"
    assert outcome(order, DECLINED, order_id).status == 202
    assert outcome(order, REJECTED, order_id).status == 202
    assert status(order, order_id)["status"] == "confirmed"


def test_the_same_outcome_five_times_decides_once_and_repeats_the_same_reply(
    order: RunningService,
) -> None:
    order_id = place(order)
    outcome(order, RESERVED, order_id)
    event_type, source = AUTHORIZED
    data = {"order_id": order_id, "authorization_id": "a", "amount": 2100, "currency": "EUR"}
    deliveries = [
        order.send(event_type, data, subject=order_id, source=source, event_id="pay-1")
        for _ in range(5)
    ]
    assert {d.status for d in deliveries} == {200}
    assert {d.reply.id for d in deliveries if d.reply} == {deliveries[0].reply.id}  # type: ignore[union-attr]
    sent = [e for e in status(order, order_id)["events"] if e["direction"] == "sent"]
    assert [e["type"] for e in sent] == ["order.created", "order.confirmed"]


def test_a_logical_duplicate_under_another_id_decides_nothing_again(
    order: RunningService,
) -> None:
    order_id = place(order)
    outcome(order, RESERVED, order_id)
    assert outcome(order, AUTHORIZED, order_id).reply_type == "order.confirmed"
    again = outcome(order, AUTHORIZED, order_id)
    assert again.status == 202
    received = [e for e in status(order, order_id)["events"] if e["direction"] == "received"]
    assert len(received) == 3, "every event seen is listed, duplicates included"


def test_outcomes_for_an_order_never_placed_here_cancel_it_once(order: RunningService) -> None:
    first = outcome(order, RESERVED, "stray-1")
    assert first.reply_type == "order.cancelled"
    assert first.reply_data["code"] == "unknown_order"
    assert "customer_id" not in first.reply_data
    assert outcome(order, AUTHORIZED, "stray-1").status == 202
    shown = status(order, "stray-1")
    assert (shown["status"], shown["code"], shown["customer_id"]) == (
        "cancelled",
        "unknown_order",
        None,
    )
    assert (shown["inventory"], shown["payment"]) == ("reserved", "authorized")


def test_an_outcome_whose_data_breaks_its_schema_is_a_400(order: RunningService) -> None:
    order_id = place(order)
    delivery = order.send("payment.authorized", {"order_id": order_id}, subject=order_id)
    assert delivery.status == 400
    assert "authorization_id" in delivery.json()["error"]
    assert status(order, order_id)["status"] == "pending"


def test_order_answers_an_event_it_does_not_consume_with_400(order: RunningService) -> None:
    assert order.send("order.created", {"order_id": "x"}).status == 400


def test_an_order_lists_its_events_in_the_order_they_happened_each_with_its_time(
    order: RunningService,
) -> None:
    order_id = place(order)
    outcome(order, RESERVED, order_id)
    events = status(order, order_id)["events"]
    assert [(e["direction"], e["type"]) for e in events] == [
        ("sent", "order.created"),
        ("received", "inventory.reserved"),
    ]
    assert all(set(e) == {"direction", "type", "id", "source", "at"} for e in events)
    assert events[0]["at"] <= events[1]["at"]


def test_an_outcome_moves_the_orders_updated_at(order: RunningService) -> None:
    long_ago = "2000-01-01T00:00:00.000+00:00"
    order_id = place(order)
    assert order.service.engine is not None
    with order.service.engine.begin() as connection:
        connection.execute(sa.update(store.orders).values(updated_at=long_ago))
    outcome(order, RESERVED, order_id)
    shown = status(order, order_id)
    assert (shown["inventory"], shown["updated_at"] > long_ago) == ("reserved", True)
    assert datetime.fromisoformat(shown["updated_at"]).utcoffset() == timedelta(0)


def test_an_order_never_placed_here_keeps_why_it_was_cancelled(order: RunningService) -> None:
    outcome(order, RESERVED, "stray-1")
    why = "the order service never placed order 'stray-1' (inventory.reserved received)"
    assert (status(order, "stray-1")["reason"], status(order, "stray-1")["code"]) == (
        why,
        "unknown_order",
    )


def test_a_conflicting_second_outcome_of_a_step_is_ignored(order: RunningService) -> None:
    order_id = place(order)
    assert outcome(order, RESERVED, order_id).status == 202
    assert outcome(order, REJECTED, order_id).status == 202, "the first outcome stands"
    decided = outcome(order, AUTHORIZED, order_id)
    assert decided.reply_type == "order.confirmed"
    shown = status(order, order_id)
    assert (shown["status"], shown["inventory"]) == ("confirmed", "reserved")


def test_each_decision_goes_out_under_its_own_id_as_the_order_lists_it(
    order: RunningService,
) -> None:
    ids = []
    for _ in range(2):
        order_id = place(order)
        decided = outcome(order, REJECTED, order_id)
        assert decided.reply is not None and decided.reply_type == "order.cancelled"
        [sent] = [e for e in status(order, order_id)["events"] if e["type"] == "order.cancelled"]
        assert sent["id"] == decided.reply.id
        ids.append(sent["id"])
    assert len(set(ids)) == 2
