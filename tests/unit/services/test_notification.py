"""The notification service: real mail over SMTP (aiosmtpd), once per thing that happened."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.config import ConfigError
from services.notification.app import NotificationConfig, create_app
from services.notification.mailer import Mailer, MailSettings, SmtpMailer
from tests.support.processes import free_port
from tests.unit.services.mail_server import (
    PASSWORD,
    USERNAME,
    MailServer,
    self_signed_certificate,
)
from tests.unit.services.running_service import Delivery, RunningService, kit_config

MAIL_FROM = "The Shop <shop@shop.example>"


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


def start(
    database_url: str, settings: MailSettings, mailer: Mailer | None = None
) -> RunningService:
    config = NotificationConfig(kit_config("notification", database_url), settings)
    return RunningService(create_app(config, mailer))


@pytest.fixture
def notification(database_url: str, mail_server: MailServer) -> Iterator[RunningService]:
    settings = MailSettings(host="127.0.0.1", port=mail_server.port, mail_from=MAIL_FROM)
    running = start(database_url, settings)
    yield running
    running.close()


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
    assert response.status_code == 200
    return list(response.get_json())


# -- sending ------------------------------------------------------------------------------------


def test_user_created_sends_a_welcome_mail_and_replies_notification_sent(
    notification: RunningService, mail_server: MailServer
) -> None:
    delivery = user_created(notification)
    assert delivery.status == 200
    assert delivery.reply_type == "notification.sent"
    assert delivery.reply is not None and delivery.reply.get("subject") == "u-1"
    (mail,) = mail_server.received.all()
    assert mail["To"] == "u-1@example.com"
    assert mail["From"] == MAIL_FROM
    assert mail["Subject"] == "Welcome, Ada"
    sent = delivery.reply_data
    assert sent["to"] == "u-1@example.com"
    assert sent["message_id"] == mail["Message-ID"]
    assert sent["cause"]["type"] == "user.created"
    assert sent["notification_id"] == "user.created/u-1"


def test_order_confirmed_mails_the_lines_and_the_total(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    delivery = order_confirmed(notification)
    assert delivery.reply_type == "notification.sent"
    assert delivery.reply is not None and delivery.reply.get("subject") == "o-1"
    mail = mail_server.received.all()[-1]
    assert mail["Subject"] == "Order o-1 is confirmed"
    body = mail.get_payload()
    assert "2 x tea at 4.50 EUR" in body and "Total: 9.00 EUR" in body


def test_order_cancelled_mails_the_reason(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    assert order_cancelled(notification).reply_type == "notification.sent"
    mail = mail_server.received.all()[-1]
    assert mail["Subject"] == "Order o-1 was cancelled"
    assert "inventory: not enough tea" in mail.get_payload()


def test_a_cancelled_order_nobody_placed_mails_nobody(
    notification: RunningService, mail_server: MailServer
) -> None:
    delivery = notification.send(
        "order.cancelled",
        {"order_id": "stray", "code": "unknown_order", "reason": "never placed"},
        subject="stray",
    )
    assert delivery.status == 202
    assert mail_server.received.all() == []


def test_get_notifications_lists_what_was_sent_newest_first(
    notification: RunningService,
) -> None:
    user_created(notification)
    order_confirmed(notification)
    found = listed(notification)
    assert [n["id"] for n in found] == ["order.confirmed/o-1", "user.created/u-1"]
    assert found[0]["to"] == "u-1@example.com"
    assert found[0]["status"] == "sent"
    assert found[0]["mail_subject"] == "Order o-1 is confirmed"
    assert [n["id"] for n in listed(notification, "?subject=u-1")] == ["user.created/u-1"]
    assert len(listed(notification, "?limit=1")) == 1
    assert notification.client.get("/notifications?limit=0").status_code == 400


# -- at most once, any order ----------------------------------------------------------------------


def test_the_same_event_five_times_sends_one_mail(
    notification: RunningService, mail_server: MailServer
) -> None:
    replies = {user_created(notification, event_id="e-1").reply.id for _ in range(5)}  # type: ignore[union-attr]
    assert len(replies) == 1
    assert len(mail_server.received.all()) == 1


def test_a_logical_duplicate_under_another_id_sends_no_second_mail(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    order_confirmed(notification)
    assert order_confirmed(notification).status == 202
    assert user_created(notification).status == 202
    assert len(mail_server.received.all()) == 2


def test_an_order_mail_before_its_user_is_retried_until_the_user_arrives(
    notification: RunningService, mail_server: MailServer
) -> None:
    early = order_confirmed(notification, event_id="c-1")
    assert early.status == 503
    assert "user.created" in early.json()["error"]
    assert mail_server.received.all() == []
    user_created(notification)
    assert order_confirmed(notification, event_id="c-1").reply_type == "notification.sent"
    assert [m["To"] for m in mail_server.received.all()] == ["u-1@example.com"] * 2


def test_an_unreachable_mail_server_is_a_503_and_the_retry_sends(
    database_url: str, mail_server: MailServer
) -> None:
    closed = MailSettings(host="127.0.0.1", port=free_port(), mail_from=MAIL_FROM)
    down = start(database_url, closed)
    try:
        delivery = user_created(down, event_id="e-1")
        assert delivery.status == 503
        assert "cannot send" in delivery.json()["error"]
        assert listed(down) == []
    finally:
        down.close()
    up = start(database_url, MailSettings(host="127.0.0.1", port=mail_server.port))
    try:
        assert user_created(up, event_id="e-1").reply_type == "notification.sent"
        assert len(mail_server.received.all()) == 1
    finally:
        up.close()


def test_a_refused_recipient_is_recorded_and_not_retried(
    notification: RunningService, mail_server: MailServer
) -> None:
    delivery = user_created(notification, "u-2", data={"email": "bounce@example.com"})
    assert delivery.status == 202
    (entry,) = listed(notification)
    assert entry["status"] == "refused"
    assert "550" in entry["error"]
    assert mail_server.received.all() == []


# -- TLS and login --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("tls", ["starttls", "tls"])
def test_mail_goes_over_tls_with_a_login(database_url: str, certificate: Path, tls: str) -> None:
    with MailServer(tls=tls, certificate=certificate, login=True) as server:
        settings = MailSettings(
            host="127.0.0.1",
            port=server.port,
            tls=tls,
            username=USERNAME,
            password=PASSWORD,
            mail_from=MAIL_FROM,
        )
        trusting = ssl.create_default_context(cafile=str(certificate))
        running = start(database_url, settings, SmtpMailer(settings, ssl_context=trusting))
        try:
            assert user_created(running).reply_type == "notification.sent"
            assert len(server.received.all()) == 1
        finally:
            running.close()


def test_a_wrong_password_is_a_503(database_url: str, certificate: Path) -> None:
    with MailServer(tls="starttls", certificate=certificate, login=True) as server:
        settings = MailSettings(
            host="127.0.0.1", port=server.port, tls="starttls", username=USERNAME, password="no"
        )
        trusting = ssl.create_default_context(cafile=str(certificate))
        running = start(database_url, settings, SmtpMailer(settings, ssl_context=trusting))
        try:
            assert user_created(running).status == 503
        finally:
            running.close()


def test_an_untrusted_certificate_is_a_503(database_url: str, certificate: Path) -> None:
    with MailServer(tls="tls", certificate=certificate) as server:
        settings = MailSettings(host="127.0.0.1", port=server.port, tls="tls")
        running = start(database_url, settings)
        try:
            delivery = user_created(running)
            assert delivery.status == 503
            assert "SSL" in delivery.json()["error"]
        finally:
            running.close()


# -- configuration --------------------------------------------------------------------------------


def test_mail_settings_come_from_the_environment() -> None:
    settings = MailSettings.from_env(
        {
            "SMTP_HOST": "mail.example",
            "SMTP_TLS": "starttls",
            "SMTP_USERNAME": "u",
            "SMTP_PASSWORD": "s3cr3t-pw",
            "MAIL_FROM": "Shop <shop@example.com>",
        }
    )
    assert (settings.host, settings.port, settings.tls) == ("mail.example", 587, "starttls")
    assert (settings.username, settings.password) == ("u", "s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(settings)
    assert MailSettings.from_env({}).port == 25
    assert MailSettings.from_env({"SMTP_TLS": "tls"}).port == 465
    assert MailSettings.from_env({"SMTP_PORT": "2525"}).port == 2525


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"SMTP_TLS": "ssl"}, "SMTP_TLS"),
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
        ({"MAIL_FROM": "shop"}, "MAIL_FROM"),
    ],
)
def test_bad_mail_settings_stop_the_start(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        MailSettings.from_env(environ)
