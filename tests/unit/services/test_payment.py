"""The payment service: authorising through the test-mode processor, voiding, any arrival order."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from kit.config import ConfigError
from services.payment import store
from services.payment.app import PaymentConfig, create_app
from services.payment.processor import (
    CARD_PROCESSOR,
    Authorized,
    Declined,
    ProcessorUnavailable,
    TestModeCardProcessor,
)
from tests.unit.services.running_service import (
    Delivery,
    RunningService,
    kit_config,
    saga_event,
)


@pytest.fixture
def payment(database_url: str) -> Iterator[RunningService]:
    config = PaymentConfig(kit_config("payment", database_url), amount_limit=50_000)
    running = RunningService(create_app(config))
    yield running
    running.close()


def processor(payment: RunningService) -> TestModeCardProcessor:
    found = payment.service.resource(CARD_PROCESSOR)
    assert isinstance(found, TestModeCardProcessor)
    return found


def order_created(order_id: str, token: str = "tok_ok", total: int = 2100) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "c-1",
        "lines": [{"sku": "tea", "quantity": 1, "unit_price": total}],
        "currency": "EUR",
        "total": total,
        "payment_token": token,
    }


def created(payment: RunningService, order_id: str, token: str = "tok_ok", **kw: Any) -> Delivery:
    total = kw.pop("total", 2100)
    return payment.send(
        "order.created",
        order_created(order_id, token, total),
        subject=order_id,
        source="/shop/order",
        **kw,
    )


def cancelled(payment: RunningService, order_id: str) -> Delivery:
    data = {"order_id": order_id, "customer_id": "c-1", "code": "out_of_stock", "reason": "x"}
    return payment.send("order.cancelled", data, subject=order_id, source="/shop/order")


def state(payment: RunningService, order_id: str) -> str | None:
    with payment.connection() as connection:
        found = store.find_payment(connection, order_id)
    return None if found is None else found.state


# -- authorising --------------------------------------------------------------------------------


def test_tok_ok_is_authorised_for_the_order_total(payment: RunningService) -> None:
    delivery = created(payment, "o-1")
    assert delivery.status == 200
    assert delivery.reply_type == "payment.authorized"
    assert delivery.reply is not None and delivery.reply.get("subject") == "o-1"
    assert delivery.reply.get("partitionkey") == "o-1"
    data = delivery.reply_data
    assert (data["order_id"], data["amount"], data["currency"]) == ("o-1", 2100, "EUR")
    held = processor(payment).authorization("o-1")
    assert held is not None and held.authorization_id == data["authorization_id"]
    assert (held.amount, held.voided) == (2100, False)


@pytest.mark.parametrize(
    ("token", "total", "code"),
    [
        ("tok_declined", 2100, "card_declined"),
        ("tok_visa_4242", 2100, "unknown_token"),
        ("tok_ok", 50_001, "amount_limit"),
    ],
)
def test_a_declined_payment_replies_declined_with_its_code(
    payment: RunningService, token: str, total: int, code: str
) -> None:
    delivery = created(payment, "o-1", token, total=total)
    assert delivery.reply_type == "payment.declined"
    assert delivery.reply_data["code"] == code
    assert delivery.reply_data["reason"]
    assert processor(payment).authorization("o-1") is None
    assert state(payment, "o-1") == store.DECLINED


def test_the_amount_limit_itself_is_authorised(payment: RunningService) -> None:
    assert created(payment, "o-1", total=50_000).reply_type == "payment.authorized"


def test_a_transient_failure_answers_503_until_a_retry_succeeds(payment: RunningService) -> None:
    event = saga_event(
        "order.created",
        order_created("o-1", "tok_transient"),
        subject="o-1",
        source="/shop/order",
    )
    first, second = payment.deliver(event), payment.deliver(event)
    assert (first.status, second.status) == (503, 503)
    assert "card processor unavailable" in first.json()["error"]
    assert state(payment, "o-1") is None, "a failed attempt leaves nothing behind"
    assert payment.deliver(event).reply_type == "payment.authorized"
    assert processor(payment).granted == ["o-1"]


def test_the_same_order_created_five_times_authorises_once(payment: RunningService) -> None:
    replies = [created(payment, "o-1", event_id="e-1") for _ in range(5)]
    assert len({d.reply.id for d in replies if d.reply}) == 1
    assert processor(payment).granted == ["o-1"]


def test_a_logical_duplicate_gets_the_same_authorisation_and_no_second_charge(
    payment: RunningService,
) -> None:
    first = created(payment, "o-1")
    again = created(payment, "o-1")
    assert again.reply_type == "payment.authorized"
    assert again.reply_data == first.reply_data
    assert processor(payment).granted == ["o-1"]


def test_concurrent_logical_duplicates_charge_once(payment: RunningService) -> None:
    def deliver(number: int) -> str | None:
        event = saga_event("order.created", order_created("o-1"), subject="o-1")
        return payment.deliver(event, payment.app.test_client()).reply_type

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(deliver, range(10)))
    assert replies == ["payment.authorized"] * 10
    assert processor(payment).granted == ["o-1"]


# -- voiding ------------------------------------------------------------------------------------


def test_order_cancelled_voids_the_authorisation_once(payment: RunningService) -> None:
    authorized = created(payment, "o-1").reply_data
    voided = cancelled(payment, "o-1")
    assert voided.reply_type == "payment.voided"
    assert voided.reply_data == authorized
    assert cancelled(payment, "o-1").status == 202
    held = processor(payment).authorization("o-1")
    assert held is not None and held.voided
    assert state(payment, "o-1") == store.VOIDED


def test_a_cancel_before_its_create_is_remembered_and_nothing_is_charged(
    payment: RunningService,
) -> None:
    assert cancelled(payment, "o-1").status == 202
    late = created(payment, "o-1")
    assert late.reply_type == "payment.declined"
    assert late.reply_data["code"] == "order_cancelled"
    assert processor(payment).granted == []
    assert created(payment, "o-1").reply_data["code"] == "order_cancelled"


def test_cancelling_a_declined_order_voids_nothing(payment: RunningService) -> None:
    created(payment, "o-1", "tok_declined")
    assert cancelled(payment, "o-1").status == 202
    assert state(payment, "o-1") == store.DECLINED


def test_a_duplicate_create_after_the_void_repeats_the_authorisation_without_a_charge(
    payment: RunningService,
) -> None:
    created(payment, "o-1")
    cancelled(payment, "o-1")
    again = created(payment, "o-1")
    assert again.reply_type == "payment.authorized"
    assert processor(payment).granted == ["o-1"]
    held = processor(payment).authorization("o-1")
    assert held is not None and held.voided


# -- the test-mode processor and the configuration -----------------------------------------------


def test_the_test_mode_processor_is_idempotent_on_its_key() -> None:
    card = TestModeCardProcessor(transient_failures=1, amount_limit=100)
    with pytest.raises(ProcessorUnavailable):
        card.authorize(key="k", token="tok_transient", amount=5, currency="EUR")
    first = card.authorize(key="k", token="tok_transient", amount=5, currency="EUR")
    assert isinstance(first, Authorized)
    assert card.authorize(key="k", token="tok_ok", amount=5, currency="EUR") == first
    assert card.granted == ["k", "k"], "a repeat is answered from memory but still counted"
    assert card.authorize(key="j", token="tok_ok", amount=101, currency="EUR") == Declined(
        "amount_limit", "101 is over the test-mode limit of 100"
    )
    card.void(first.authorization_id)
    card.void(first.authorization_id)
    with pytest.raises(KeyError):
        card.void("auth_unknown")


def test_the_configuration_reads_the_test_card_settings() -> None:
    config = PaymentConfig.from_env(
        {"TEST_CARD_TRANSIENT_FAILURES": "0", "TEST_CARD_AMOUNT_LIMIT": "99"}
    )
    assert (config.transient_failures, config.amount_limit) == (0, 99)
    assert config.kit.service == "payment"
    with pytest.raises(ConfigError, match="TEST_CARD_AMOUNT_LIMIT"):
        PaymentConfig.from_env({"TEST_CARD_AMOUNT_LIMIT": "lots"})
    with pytest.raises(ConfigError, match="TEST_CARD_TRANSIENT_FAILURES"):
        PaymentConfig.from_env({"TEST_CARD_TRANSIENT_FAILURES": "-1"})


@pytest.mark.parametrize(
    ("token", "total", "code"),
    [("tok_visa_4242", 2100, "unknown_token"), ("tok_ok", 50_001, "amount_limit")],
)
def test_a_logical_duplicate_of_a_decline_gets_its_own_code_and_reason_again(
    payment: RunningService, token: str, total: int, code: str
) -> None:
    first = created(payment, "o-1", token, total=total)
    again = created(payment, "o-1", token, total=total)
    assert first.reply_data["code"] == code
    assert (again.reply_type, again.reply_data) == ("payment.declined", first.reply_data)
    assert first.reply is not None and again.reply is not None
    assert first.reply.get("subject") == again.reply.get("subject") == "o-1"


def test_voiding_a_payment_moves_its_updated_at(payment: RunningService) -> None:
    long_ago = "2000-01-01T00:00:00.000+00:00"
    assert created(payment, "o-1").reply_type == "payment.authorized"
    assert payment.service.engine is not None
    with payment.service.engine.begin() as connection:
        connection.execute(sa.update(store.payments).values(updated_at=long_ago))
    assert cancelled(payment, "o-1").reply_type == "payment.voided"
    [row] = payment.rows(store.payments)
    assert (row["state"], row["updated_at"] > long_ago) == (store.VOIDED, True)
    assert datetime.fromisoformat(row["updated_at"]).utcoffset() == timedelta(0)
