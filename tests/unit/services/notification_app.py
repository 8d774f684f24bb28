"""The notification service under test: its real app on a real database, its mail sender running
against a real SMTP server (mail_server.py), and what the tests read of it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kit import KitConfig
from kit.outbox import outbox
from kit.outgoing import Message
from services.notification.app import NotificationConfig, create_app
from services.notification.mailer import Mailer, MailSettings
from services.notification.sender import SenderSettings
from tests.support.processes import wait_for
from tests.unit.services.running_service import (
    Delivery,
    RunningService,
    kit_config,
    parse_message,
)
from wire.http_binding import WireEvent

MAIL_FROM = "The Shop <shop@shop.example>"
# Quick enough for tests: back-off from 0.2 s, capped at 1 s; a short poll.
SENDING = SenderSettings(poll_seconds=0.1, backoff_delay_seconds=0.2, backoff_cap_seconds=1.0)


def smtp_settings(port: int, **changes: Any) -> MailSettings:
    return MailSettings(host="127.0.0.1", port=port, mail_from=MAIL_FROM, **changes)


def start(
    database_url: str,
    settings: MailSettings,
    mailer: Mailer | None = None,
    *,
    sending: SenderSettings = SENDING,
    kit: KitConfig | None = None,
) -> RunningService:
    """The notification app on `database_url`, its sender started (unless `sending` says not)."""
    config = NotificationConfig(kit or kit_config("notification", database_url), settings, sending)
    return RunningService(create_app(config, mailer))


def quick_database(database_url: str, wait_seconds: float) -> KitConfig:
    """Kit settings that give up on a busy or absent database after `wait_seconds`."""
    return replace(kit_config("notification", database_url), database_wait_seconds=wait_seconds)


def user_created(service: RunningService, user_id: str = "u-1", **kw: Any) -> Delivery:
    data = {"user_id": user_id, "name": "Ada", "email": f"{user_id}@example.com"}
    data.update(kw.pop("data", {}))
    return service.send("user.created", data, subject=user_id, source="/shop/customer", **kw)


def order_confirmed(service: RunningService, order_id: str = "o-1", **kw: Any) -> Delivery:
    data = {
        "order_id": order_id,
        "customer_id": kw.pop("customer_id", "u-1"),
        "lines": [{"sku": "tea", "quantity": 2, "unit_price": 450}],
        "currency": "EUR",
        "total": 900,
    }
    return service.send("order.confirmed", data, subject=order_id, source="/shop/order", **kw)


def order_cancelled(service: RunningService, order_id: str = "o-1", **data: Any) -> Delivery:
    payload = {"order_id": order_id, "customer_id": "u-1", "code": "out_of_stock"}
    payload.update(reason="inventory: not enough tea", **data)
    return service.send("order.cancelled", payload, subject=order_id, source="/shop/order")


def listed(service: RunningService, query: str = "") -> list[dict[str, Any]]:
    response = service.client.get(f"/notifications{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json())


def entry(service: RunningService, notification_id: str) -> dict[str, Any] | None:
    return next((n for n in listed(service) if n["id"] == notification_id), None)


def wait_for_status(
    service: RunningService, notification_id: str, status: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll GET /notifications until the mail has `status`; fail with the entry last seen."""

    def probe() -> dict[str, Any]:
        found = entry(service, notification_id)
        assert found is not None and found["status"] == status, found
        return found

    return wait_for(probe, timeout=timeout, what=f"{notification_id} {status}")


def sent_events(service: RunningService) -> list[WireEvent]:
    """The notification.sent events in the service's outbox (the relay is off in tests)."""
    rows = sorted(service.rows(outbox), key=lambda row: row["seq"])
    messages = [Message.from_stored(row["headers"], row["body"]) for row in rows]
    events = [parse_message(message.headers, message.body) for message in messages]
    return [event for event in events if event.type == "notification.sent"]


def metric(service: RunningService, name: str) -> float:
    """A sample of the service's `GET /metrics`, by its exposed name."""
    text = service.client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no metric {name} in:\n{text}")
