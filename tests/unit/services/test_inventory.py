"""The inventory service: stock per sku, all-or-none reservations, sales, releases, any order."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.inventory import store
from services.inventory.app import create_app
from tests.unit.services.running_service import (
    Delivery,
    RunningService,
    kit_config,
    saga_event,
)


@pytest.fixture
def inventory(database_url: str) -> Iterator[RunningService]:
    running = RunningService(create_app(kit_config("inventory", database_url)))
    yield running
    running.close()


def put_stock(inventory: RunningService, sku: str, available: int) -> Any:
    return inventory.client.put(f"/stock/{sku}", json={"available": available})


def stock(inventory: RunningService, sku: str) -> dict[str, int]:
    body = inventory.client.get(f"/stock/{sku}").get_json()
    assert body["available"] + body["reserved"] + body["sold"] == body["stocked"], body
    return {key: body[key] for key in ("available", "reserved", "sold", "stocked")}


def created(
    inventory: RunningService, order_id: str, *lines: tuple[str, int], **kw: Any
) -> Delivery:
    data = {
        "order_id": order_id,
        "customer_id": "c-1",
        "lines": [{"sku": sku, "quantity": q, "unit_price": 100} for sku, q in lines],
        "currency": "EUR",
        "total": 100 * sum(q for _, q in lines),
        "payment_token": "tok_ok",
    }
    return inventory.send("order.created", data, subject=order_id, source="/shop/order", **kw)


def confirmed(inventory: RunningService, order_id: str) -> Delivery:
    data = {
        "order_id": order_id,
        "customer_id": "c-1",
        "lines": [{"sku": "tea", "quantity": 1, "unit_price": 100}],
        "currency": "EUR",
        "total": 100,
    }
    return inventory.send("order.confirmed", data, subject=order_id, source="/shop/order")


def cancelled(inventory: RunningService, order_id: str) -> Delivery:
    data = {"order_id": order_id, "customer_id": "c-1", "code": "card_declined", "reason": "no"}
    return inventory.send("order.cancelled", data, subject=order_id, source="/shop/order")


def units(available: int, reserved: int = 0, sold: int = 0, stocked: int | None = None) -> Any:
    total = available + reserved + sold if stocked is None else stocked
    return {"available": available, "reserved": reserved, "sold": sold, "stocked": total}


# -- the database holds the units to account ----------------------------------------------------


def insert_stock(inventory: RunningService, sku: str, **counts: int) -> None:
    assert inventory.service.engine is not None
    with inventory.service.engine.begin() as connection:
        connection.execute(sa.insert(store.stock).values(sku=sku, updated_at=store.now(), **counts))


@pytest.mark.parametrize(
    ("counts", "constraint"),
    [
        (units(-1, 1, 0, stocked=0), "stock_available_not_negative"),
        (units(1, -1, 0, stocked=0), "stock_reserved_not_negative"),
        (units(1, 0, -1, stocked=0), "stock_sold_not_negative"),
        (units(1, 1, 1, stocked=4), "stock_units_accounted"),
        (units(1, 1, 1, stocked=2), "stock_units_accounted"),
    ],
)
def test_the_database_refuses_a_stock_row_that_loses_or_invents_units(
    inventory: RunningService, counts: dict[str, int], constraint: str
) -> None:
    insert_stock(inventory, "possible", **units(1, 1, 1))
    with pytest.raises(sa.exc.IntegrityError, match=constraint):
        insert_stock(inventory, "impossible", **counts)
    assert [row["sku"] for row in inventory.rows(store.stock)] == ["possible"]


def test_the_database_refuses_an_update_that_sells_a_unit_it_never_had(
    inventory: RunningService,
) -> None:
    assert put_stock(inventory, "tea", 2).status_code == 201
    assert inventory.service.engine is not None
    refused = pytest.raises(sa.exc.IntegrityError, match="stock_units_accounted")
    with refused, inventory.service.engine.begin() as connection:
        connection.execute(sa.update(store.stock).values(sold=store.stock.c.sold + 1))
    assert stock(inventory, "tea") == units(2)


# -- the HTTP API -------------------------------------------------------------------------------


def test_put_creates_a_sku_with_201_then_sets_it_with_200(inventory: RunningService) -> None:
    first = put_stock(inventory, "tea", 10)
    assert first.status_code == 201
    assert first.headers["Location"] == "/stock/tea"
    assert first.get_json()["available"] == 10
    again = put_stock(inventory, "tea", 4)
    assert again.status_code == 200
    assert stock(inventory, "tea") == units(4)


def test_put_sets_what_is_available_and_leaves_reservations_and_sales_alone(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 10)
    created(inventory, "o-1", ("tea", 3))
    created(inventory, "o-2", ("tea", 2))
    confirmed(inventory, "o-2")
    assert stock(inventory, "tea") == units(5, reserved=3, sold=2)
    put_stock(inventory, "tea", 1)
    assert stock(inventory, "tea") == units(1, reserved=3, sold=2, stocked=6)
    put_stock(inventory, "tea", 0)
    cancelled(inventory, "o-1")
    assert stock(inventory, "tea") == units(3, reserved=0, sold=2, stocked=5)


@pytest.mark.parametrize(
    ("sku", "body", "status"),
    [
        ("tea", {"available": -1}, 400),
        ("tea", {"available": 1.5}, 400),
        ("tea", {"available": "3"}, 400),
        ("tea", {}, 400),
        ("tea", {"available": 1, "reserved": 2}, 400),
        ("t%20a", {"available": 1}, 400),
    ],
)
def test_an_invalid_stock_change_is_a_400(
    inventory: RunningService, sku: str, body: dict[str, Any], status: int
) -> None:
    response = inventory.client.put(f"/stock/{sku}", json=body)
    assert response.status_code == status
    assert "error" in response.get_json()


def test_a_stock_change_without_json_is_a_415(inventory: RunningService) -> None:
    assert inventory.client.put("/stock/tea", data="3").status_code == 415


def test_an_unknown_sku_is_a_404(inventory: RunningService) -> None:
    assert inventory.client.get("/stock/nothing").status_code == 404


# -- reserving ----------------------------------------------------------------------------------


def test_order_created_reserves_every_line_and_replies_reserved(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    put_stock(inventory, "mug", 2)
    delivery = created(inventory, "o-1", ("tea", 2), ("mug", 1))
    assert delivery.status == 200
    assert delivery.reply_type == "inventory.reserved"
    assert delivery.reply is not None and delivery.reply.get("subject") == "o-1"
    assert delivery.reply.get("partitionkey") == "o-1"
    assert delivery.reply.get("source") == "/shop/inventory"
    assert delivery.reply_data == {
        "order_id": "o-1",
        "lines": [{"sku": "mug", "quantity": 1}, {"sku": "tea", "quantity": 2}],
    }
    assert stock(inventory, "tea") == units(3, reserved=2)
    assert stock(inventory, "mug") == units(1, reserved=1)


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ((("tea", 2), ("mug", 3)), "out_of_stock"),
        ((("tea", 2), ("spoon", 1)), "unknown_sku"),
    ],
)
def test_an_order_that_cannot_have_every_line_reserves_none(
    inventory: RunningService, lines: tuple[tuple[str, int], ...], code: str
) -> None:
    put_stock(inventory, "tea", 5)
    put_stock(inventory, "mug", 2)
    delivery = created(inventory, "o-1", *lines)
    assert delivery.reply_type == "inventory.rejected"
    assert delivery.reply_data["code"] == code
    assert delivery.reply_data["order_id"] == "o-1"
    assert stock(inventory, "tea") == units(5)
    assert stock(inventory, "mug") == units(2)


def test_lines_of_one_sku_are_reserved_together(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 3)
    delivery = created(inventory, "o-1", ("tea", 2), ("tea", 2))
    assert delivery.reply_type == "inventory.rejected"
    assert created(inventory, "o-2", ("tea", 1), ("tea", 2)).reply_data["lines"] == [
        {"sku": "tea", "quantity": 3}
    ]


def test_the_same_order_created_five_times_reserves_once_with_one_reply(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 5)
    replies = {created(inventory, "o-1", ("tea", 2), event_id="e-1").reply.id for _ in range(5)}  # type: ignore[union-attr]
    assert len(replies) == 1
    assert stock(inventory, "tea") == units(3, reserved=2)


def test_a_logical_duplicate_of_order_created_gets_the_first_answer_again(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 1)
    assert created(inventory, "o-1", ("tea", 2)).reply_type == "inventory.rejected"
    put_stock(inventory, "tea", 10)
    again = created(inventory, "o-1", ("tea", 2))
    assert again.reply_type == "inventory.rejected", "the first answer stands"
    assert created(inventory, "o-2", ("tea", 2)).reply_type == "inventory.reserved"
    assert created(inventory, "o-2", ("tea", 2)).reply_type == "inventory.reserved"
    assert stock(inventory, "tea") == units(8, reserved=2)


# -- selling and releasing ----------------------------------------------------------------------


def test_order_confirmed_turns_the_reservation_into_a_sale_once(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    created(inventory, "o-1", ("tea", 2))
    assert confirmed(inventory, "o-1").status == 202
    assert confirmed(inventory, "o-1").status == 202
    assert stock(inventory, "tea") == units(3, sold=2)


def test_order_cancelled_releases_the_reservation_once(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    created(inventory, "o-1", ("tea", 2))
    released = cancelled(inventory, "o-1")
    assert released.reply_type == "inventory.released"
    assert released.reply_data == {"order_id": "o-1", "lines": [{"sku": "tea", "quantity": 2}]}
    assert cancelled(inventory, "o-1").status == 202
    assert stock(inventory, "tea") == units(5)


def test_a_cancel_before_its_create_is_remembered_and_the_create_refused(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 5)
    assert cancelled(inventory, "o-1").status == 202
    late = created(inventory, "o-1", ("tea", 2))
    assert late.reply_type == "inventory.rejected"
    assert late.reply_data["code"] == "order_cancelled"
    assert stock(inventory, "tea") == units(5)
    with inventory.connection() as connection:
        reservation = store.find_reservation(connection, "o-1")
    assert reservation is not None and reservation.state == store.CANCELLED


def test_a_rejected_order_that_is_cancelled_releases_nothing(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 1)
    created(inventory, "o-1", ("tea", 2))
    assert cancelled(inventory, "o-1").status == 202
    assert stock(inventory, "tea") == units(1)


def test_a_confirmation_before_its_create_is_retried_later(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    early = confirmed(inventory, "o-1")
    assert early.status == 503
    assert "order.created" in early.json()["error"]
    created(inventory, "o-1", ("tea", 1))
    assert confirmed(inventory, "o-1").status == 202
    assert stock(inventory, "tea") == units(4, sold=1)


def test_a_cancel_of_a_sold_order_changes_nothing(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    created(inventory, "o-1", ("tea", 1))
    confirmed(inventory, "o-1")
    assert cancelled(inventory, "o-1").status == 202
    assert stock(inventory, "tea") == units(4, sold=1)


# -- concurrency --------------------------------------------------------------------------------


def test_20_orders_racing_for_the_last_5_units_get_exactly_5_reservations(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 5)
    put_stock(inventory, "mug", 100)

    def order(number: int) -> str | None:
        client = inventory.app.test_client()
        data = {
            "order_id": f"race-{number}",
            "customer_id": "c-1",
            "lines": [
                {"sku": "mug", "quantity": 1, "unit_price": 1},
                {"sku": "tea", "quantity": 1, "unit_price": 1},
            ],
            "currency": "EUR",
            "total": 2,
            "payment_token": "tok_ok",
        }
        delivery = inventory.deliver(saga_event("order.created", data), client)
        assert delivery.status == 200, delivery
        return delivery.reply_type

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(order, range(20)))
    assert outcomes.count("inventory.reserved") == 5
    assert outcomes.count("inventory.rejected") == 15
    assert stock(inventory, "tea") == units(0, reserved=5)
    assert stock(inventory, "mug") == units(95, reserved=5)


def test_concurrent_puts_of_a_new_sku_create_it_once(inventory: RunningService) -> None:
    def put(number: int) -> int:
        client = inventory.app.test_client()
        return int(client.put("/stock/new", json={"available": 7}).status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(put, range(8)))
    assert statuses == [200] * 7 + [201]
    assert stock(inventory, "new") == units(7)


def test_each_of_concurrent_puts_of_a_new_sku_sets_what_it_asked_for(
    inventory: RunningService,
) -> None:
    # The losers of the race to create the sku must still set it (PostgreSQL: their insert
    # waits for the winner's, finds the row, and updates it).
    def put(available: int) -> tuple[int, int]:
        client = inventory.app.test_client()
        body = client.put("/stock/raced", json={"available": available}).get_json()
        return available, int(body["available"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(put, range(1, 9)))
    assert [asked for asked, _ in answers] == [answered for _, answered in answers]
    final = stock(inventory, "raced")
    assert final["available"] in range(1, 9)
    assert final == units(final["available"])


# -- what the store keeps -----------------------------------------------------------------------


def test_a_rejection_is_answered_again_with_its_own_code_and_reason(
    inventory: RunningService,
) -> None:
    first = created(inventory, "o-1", ("tea", 1), ("mate", 1))
    again = created(inventory, "o-1", ("tea", 1), ("mate", 1))
    rejection = {
        "order_id": "o-1",
        "code": "unknown_sku",
        "reason": "no such sku: mate, tea",
    }
    assert (first.reply_type, first.reply_data) == ("inventory.rejected", rejection)
    assert (again.reply_type, again.reply_data) == ("inventory.rejected", rejection)
    assert first.reply is not None and again.reply is not None
    assert first.reply.get("subject") == again.reply.get("subject") == "o-1"


def test_moving_more_units_than_a_place_holds_is_refused_before_the_database_is(
    inventory: RunningService,
) -> None:
    put_stock(inventory, "tea", 5)
    assert created(inventory, "o-1", ("tea", 2)).reply_type == "inventory.reserved"
    assert inventory.service.engine is not None
    refused = pytest.raises(RuntimeError, match="cannot move 3 units of 'tea' out of reserved")
    with refused, inventory.service.engine.begin() as connection:
        store.sell(connection, {"tea": 3})
    assert stock(inventory, "tea") == units(3, reserved=2)


LONG_AGO = "2000-01-01T00:00:00.000+00:00"


def test_every_change_of_stock_moves_its_updated_at(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    assert inventory.service.engine is not None
    with inventory.service.engine.begin() as connection:
        connection.execute(sa.update(store.stock).values(updated_at=LONG_AGO))
    updated = datetime.fromisoformat(put_stock(inventory, "tea", 6).get_json()["updated_at"])
    assert updated > datetime.fromisoformat(LONG_AGO)
    assert updated.utcoffset() == timedelta(0), "times are UTC, and say so"


def test_selling_a_reservation_moves_its_updated_at(inventory: RunningService) -> None:
    put_stock(inventory, "tea", 5)
    assert created(inventory, "o-1", ("tea", 1)).reply_type == "inventory.reserved"
    assert inventory.service.engine is not None
    with inventory.service.engine.begin() as connection:
        connection.execute(sa.update(store.reservations).values(updated_at=LONG_AGO))
    assert confirmed(inventory, "o-1").status == 202
    [row] = inventory.rows(store.reservations)
    assert (row["state"], row["updated_at"] > LONG_AGO) == (store.SOLD, True)
