"""The notification service: each mail stored and answered at once, then sent over real SMTP
(aiosmtpd) by the mail sender, once per thing that happened, with notification.sent emitted."""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kit.config import ConfigError
from services.notification.mailer import MailSettings, SmtpMailer
from services.notification.sender import SenderSettings, mail_backoff
from tests.support.processes import free_port, wait_for
from tests.unit.services.mail_server import (
    PASSWORD,
    USERNAME,
    MailServer,
    self_signed_certificate,
)
from tests.unit.services.notification_app import (
    MAIL_FROM,
    SENDING,
    entry,
    listed,
    metric,
    order_cancelled,
    order_confirmed,
    sent_events,
    smtp_settings,
    start,
    user_created,
    wait_for_status,
)
from tests.unit.services.running_service import RunningService, saga_event

TOLERANCE = 0.05


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def notification(database_url: str, mail_server: MailServer) -> Iterator[RunningService]:
    running = start(database_url, smtp_settings(mail_server.port))
    yield running
    running.close()


# -- sending ------------------------------------------------------------------------------------


def test_user_created_is_answered_at_once_then_mailed_once_with_notification_sent(
    notification: RunningService, mail_server: MailServer
) -> None:
    delivery = user_created(notification)
    assert (delivery.status, delivery.reply) == (202, None)

    sent = wait_for_status(notification, "user.created/u-1", "sent")
    (mail,) = mail_server.received.all()
    assert mail["To"] == "u-1@example.com"
    assert mail["From"] == MAIL_FROM
    assert mail["Subject"] == "Welcome, Ada"
    assert mail["Message-ID"] == sent["message_id"]
    assert (sent["attempts"], sent["error"], sent["next_attempt_at"]) == (1, None, None)
    assert sent["created_at"] <= sent["sent_at"]
    (event,) = sent_events(notification)
    assert event.get("subject") == "u-1" and event.source == "/shop/notification"
    assert event.get("partitionkey") == "u-1"  # the subject, here the user id
    assert event.data is not None
    assert json.loads(event.data) == {
        "notification_id": "user.created/u-1",
        "cause": {"type": "user.created", "id": sent["cause"]["id"], "source": "/shop/customer"},
        "to": "u-1@example.com",
        "message_id": mail["Message-ID"],
    }
    assert metric(notification, "shop_mails_sent_total") == 1
    assert metric(notification, "shop_mails_pending") == 0


def test_order_confirmed_mails_the_lines_and_the_total(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    assert order_confirmed(notification).status == 202
    wait_for_status(notification, "order.confirmed/o-1", "sent")
    (mail,) = [m for m in mail_server.received.all() if m["Subject"] == "Order o-1 is confirmed"]
    body = mail.get_payload()
    assert "2 x tea at 4.50 EUR" in body and "Total: 9.00 EUR" in body
    sent = [e for e in sent_events(notification) if e.get("subject") == "o-1"]
    assert [e.get("partitionkey") for e in sent] == ["o-1"]


def test_order_cancelled_mails_the_reason(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    assert order_cancelled(notification).status == 202
    wait_for_status(notification, "order.cancelled/o-1", "sent")
    (mail,) = [m for m in mail_server.received.all() if m["Subject"] == "Order o-1 was cancelled"]
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
    assert listed(notification) == []
    assert mail_server.received.all() == []


def test_notification_sent_continues_the_trace_of_the_event_the_mail_is_about(
    notification: RunningService,
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    event = saga_event(
        "user.created",
        {"user_id": "u-1", "name": "Ada", "email": "u-1@example.com"},
        subject="u-1",
    ).with_attributes(traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    assert notification.deliver(event).status == 202
    wait_for_status(notification, "user.created/u-1", "sent")
    (sent,) = sent_events(notification)
    assert str(sent.get("traceparent")).split("-")[1] == trace


def test_get_notifications_lists_the_mails_and_their_state_newest_first(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    wait_for_status(notification, "user.created/u-1", "sent")
    user_created(notification, "u-2", data={"email": "bounce@example.com"})
    wait_for_status(notification, "user.created/u-2", "failed")
    mail_server.script.deferrals = 1000  # from now on every mail waits
    order_confirmed(notification)
    wait_for(
        lambda: (entry(notification, "order.confirmed/o-1") or {}).get("attempts", 0) >= 1,
        what="a first attempt to send the confirmation",
    )
    found = listed(notification)
    assert [(n["id"], n["status"]) for n in found] == [
        ("order.confirmed/o-1", "pending"),
        ("user.created/u-2", "failed"),
        ("user.created/u-1", "sent"),
    ]
    pending = found[0]
    assert pending["to"] == "u-1@example.com" and pending["sent_at"] is None
    assert pending["mail_subject"] == "Order o-1 is confirmed"
    assert "451" in pending["error"] and pending["next_attempt_at"] is not None
    assert [n["id"] for n in listed(notification, "?subject=u-1")] == ["user.created/u-1"]
    assert len(listed(notification, "?limit=1")) == 1
    assert notification.client.get("/notifications?limit=0").status_code == 400
    assert metric(notification, "shop_mails_pending") == 1


# -- one mail per thing that happened -------------------------------------------------------------


def test_the_same_event_five_times_stores_and_sends_one_mail(
    notification: RunningService, mail_server: MailServer
) -> None:
    statuses = [user_created(notification, event_id="e-1").status for _ in range(5)]
    assert statuses == [202] * 5
    wait_for_status(notification, "user.created/u-1", "sent")
    # One row, and it is sent: nothing is left that could be sent again.
    assert len(listed(notification)) == 1
    assert len(mail_server.received.all()) == 1
    assert len(sent_events(notification)) == 1


def test_a_logical_duplicate_under_another_id_sends_no_second_mail(
    notification: RunningService, mail_server: MailServer
) -> None:
    user_created(notification)
    order_confirmed(notification)
    assert order_confirmed(notification).status == 202
    assert user_created(notification).status == 202
    wait_for_status(notification, "order.confirmed/o-1", "sent")
    wait_for_status(notification, "user.created/u-1", "sent")
    assert len(listed(notification)) == 2
    assert len(mail_server.received.all()) == 2
    assert len(sent_events(notification)) == 2


def test_an_order_mail_before_its_user_is_retried_until_the_user_arrives(
    notification: RunningService, mail_server: MailServer
) -> None:
    early = order_confirmed(notification, event_id="c-1")
    assert early.status == 503
    assert "user.created" in early.json()["error"]
    assert listed(notification) == []
    user_created(notification)
    assert order_confirmed(notification, event_id="c-1").status == 202
    wait_for_status(notification, "order.confirmed/o-1", "sent")
    wait_for_status(notification, "user.created/u-1", "sent")
    assert [m["To"] for m in mail_server.received.all()] == ["u-1@example.com"] * 2


# -- when the mail server fails -----------------------------------------------------------------


def test_with_the_mail_server_down_the_mail_waits_and_is_sent_once_it_is_back(
    database_url: str,
) -> None:
    port = free_port()
    running = start(database_url, smtp_settings(port))
    try:
        assert user_created(running).status == 202
        waiting = wait_for(
            lambda: (
                (found := entry(running, "user.created/u-1")) and found["attempts"] >= 2 and found
            ),
            what="two attempts while the server is down",
        )
        assert waiting["status"] == "pending" and "cannot connect" in waiting["error"]
        # The schedule is in the row: the next attempt is after the last one.
        assert waiting["next_attempt_at"] > waiting["created_at"]
        assert sent_events(running) == []
        assert metric(running, "shop_mail_send_failures_total") >= 2
        with MailServer(port=port) as server:
            sent = wait_for_status(running, "user.created/u-1", "sent")
            assert len(server.received.all()) == 1
            assert sent["attempts"] > waiting["attempts"]
        assert len(sent_events(running)) == 1
    finally:
        running.close()


def test_a_451_is_retried_after_its_back_off_and_the_mail_sent_once(
    database_url: str, mail_server: MailServer
) -> None:
    # A first back-off well over the poll, so that a retry at the next poll would be seen.
    sending = replace(SENDING, backoff_delay_seconds=1.0)
    running = start(database_url, smtp_settings(mail_server.port), sending=sending)
    try:
        mail_server.script.deferrals = 1
        user_created(running)
        sent = wait_for_status(running, "user.created/u-1", "sent")
        assert sent["attempts"] == 2
        assert len(mail_server.received.all()) == 1
        assert len(sent_events(running)) == 1
        first, second = mail_server.received.data_times
        # The first back-off is backoff_delay_seconds, jittered down to half of it at most.
        assert second - first >= sending.backoff_delay_seconds / 2 - TOLERANCE
        assert metric(running, "shop_mail_send_failures_total") == 1
        assert metric(running, "shop_mails_sent_total") == 1
    finally:
        running.close()


def test_a_550_for_the_recipient_marks_the_mail_failed_and_it_is_not_retried(
    notification: RunningService, mail_server: MailServer
) -> None:
    assert user_created(notification, "u-2", data={"email": "bounce@example.com"}).status == 202
    failed = wait_for_status(notification, "user.created/u-2", "failed")
    assert "550" in failed["error"] and failed["attempts"] == 1 and failed["sent_at"] is None
    # Failed is final: the sender never takes the row again, so this stays as it is.
    assert mail_server.received.refusals == 1
    assert mail_server.received.all() == []
    assert sent_events(notification) == []
    assert metric(notification, "shop_mails_failed_total") == 1
    assert metric(notification, "shop_mails_pending") == 0


def test_the_back_off_doubles_from_its_delay_up_to_its_cap_with_jitter() -> None:
    settings = SenderSettings(backoff_delay_seconds=0.5, backoff_cap_seconds=30.0)
    for attempts, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (40, 30.0)]:
        delays = [mail_backoff(attempts, settings) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempts, delays)


# -- TLS and login --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("tls", ["starttls", "tls"])
def test_mail_goes_over_tls_with_a_login(database_url: str, certificate: Path, tls: str) -> None:
    with MailServer(tls=tls, certificate=certificate, login=True) as server:
        settings = smtp_settings(server.port, tls=tls, username=USERNAME, password=PASSWORD)
        trusting = ssl.create_default_context(cafile=str(certificate))
        running = start(database_url, settings, SmtpMailer(settings, ssl_context=trusting))
        try:
            user_created(running)
            wait_for_status(running, "user.created/u-1", "sent")
            assert len(server.received.all()) == 1
        finally:
            running.close()


def test_a_wrong_password_leaves_the_mail_pending(database_url: str, certificate: Path) -> None:
    with MailServer(tls="starttls", certificate=certificate, login=True) as server:
        settings = smtp_settings(server.port, tls="starttls", username=USERNAME, password="no")
        trusting = ssl.create_default_context(cafile=str(certificate))
        running = start(database_url, settings, SmtpMailer(settings, ssl_context=trusting))
        try:
            user_created(running)
            waiting = wait_for(
                lambda: (found := entry(running, "user.created/u-1")) and found["error"] and found,
                what="a failed attempt",
            )
            assert waiting["status"] == "pending"
            assert "SMTPAuthenticationError" in waiting["error"]
            assert server.received.all() == []
        finally:
            running.close()


def test_an_untrusted_certificate_leaves_the_mail_pending(
    database_url: str, certificate: Path
) -> None:
    with MailServer(tls="tls", certificate=certificate) as server:
        running = start(database_url, smtp_settings(server.port, tls="tls"))
        try:
            user_created(running)
            waiting = wait_for(
                lambda: (found := entry(running, "user.created/u-1")) and found["error"] and found,
                what="a failed attempt",
            )
            assert waiting["status"] == "pending" and "SSL" in waiting["error"]
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
