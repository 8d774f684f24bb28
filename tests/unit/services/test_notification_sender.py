"""The notification service's mail sender: batches over one SMTP connection, woken by a stored
mail, never in the way of reads, never forgetting a mail the server took when the database fails
right after, and never sending a mail twice when several processes share the outbox."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from kit.database import create_engine
from kit.outbox import outbox
from services.notification import store
from services.notification.app import mail_sender
from tests.conftest import require
from tests.support.postgres_server import PrivateServer, private_server, unavailable_reason
from tests.support.processes import ServedApp, wait_for
from tests.unit.services.mail_server import MailServer
from tests.unit.services.notification_app import (
    MAIL_FROM,
    SENDING,
    entry,
    quick_database,
    sent_events,
    smtp_settings,
    start,
    user_created,
    wait_for_status,
)
from tests.unit.services.running_service import RunningService, saga_event
from wire.http_binding import to_binary

# How long the database stays away in the outage tests: several leases and many retries.
OUTAGE_SECONDS = 2.0


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def by_hand(database_url: str, mail_server: MailServer) -> Iterator[RunningService]:
    """The app with no sender thread: the test runs the sender's batches itself."""
    running = start(
        database_url, smtp_settings(mail_server.port), sending=replace(SENDING, thread=False)
    )
    yield running
    running.close()


# -- batches --------------------------------------------------------------------------------------


def test_the_mails_of_a_batch_go_over_one_connection(
    by_hand: RunningService, mail_server: MailServer
) -> None:
    for number in range(5):
        assert user_created(by_hand, f"u-{number}").status == 202
    assert mail_server.received.all() == []  # the handlers sent nothing

    assert mail_sender(by_hand.app).run_once() == 5
    assert [m["To"] for m in mail_server.received.all()] == [
        f"u-{number}@example.com" for number in range(5)
    ]  # oldest first
    assert mail_server.received.connections == 1
    assert len(sent_events(by_hand)) == 5


def test_a_connection_the_server_ended_is_opened_again_for_the_next_mail(
    by_hand: RunningService, mail_server: MailServer
) -> None:
    mail_server.script.hang_ups = 1  # the first mail gets 421 and the connection ends
    for number in range(3):
        user_created(by_hand, f"u-{number}")
    sender = mail_sender(by_hand.app)

    assert sender.run_once() == 3
    assert [m["To"] for m in mail_server.received.all()] == ["u-1@example.com", "u-2@example.com"]
    assert mail_server.received.connections == 2
    first = entry(by_hand, "user.created/u-0")
    assert first is not None and first["status"] == "pending" and "421" in first["error"]

    # Due again after its back-off, and then sent.
    wait_for(lambda: sender.run_once() == 1, what="the deferred mail due again")
    assert entry(by_hand, "user.created/u-0")["status"] == "sent"  # type: ignore[index]
    assert len(mail_server.received.all()) == 3 and len(sent_events(by_hand)) == 3


def test_a_stored_mail_wakes_the_sender_at_once(database_url: str, mail_server: MailServer) -> None:
    # A poll this long would fail the deadline below: only the wake after the commit is in time.
    running = start(
        database_url, smtp_settings(mail_server.port), sending=replace(SENDING, poll_seconds=60)
    )
    try:
        user_created(running)
        wait_for_status(running, "user.created/u-1", "sent", timeout=5)
    finally:
        running.close()


def test_reads_of_the_notifications_never_wait_for_the_mail_server(
    database_url: str, mail_server: MailServer
) -> None:
    taking, release = threading.Event(), threading.Event()

    def slow_server() -> None:
        taking.set()
        release.wait(10)

    mail_server.script.on_accept = slow_server
    running = start(database_url, smtp_settings(mail_server.port))
    try:
        assert user_created(running).status == 202
        assert taking.wait(10), "the sender did not reach the mail server"
        started = time.monotonic()
        response = running.client.get("/notifications")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.get_data(as_text=True)
        assert [n["status"] for n in response.get_json()] == ["pending"]
        assert elapsed < 1.0, f"GET /notifications took {elapsed:.2f}s while a mail was sent"
        release.set()
        wait_for_status(running, "user.created/u-1", "sent")
    finally:
        release.set()
        running.close()


# -- the database fails after the server took the mail --------------------------------------------


def outage_once(down: Callable[[], None], up: Callable[[], None]) -> Callable[[], None]:
    """A fault for the mail server's accept: the first time, the database goes `down`, and comes
    back `up` OUTAGE_SECONDS later (in another thread: the server answers 250 meanwhile)."""
    fired = threading.Lock()

    def fault() -> None:
        if fired.acquire(blocking=False):
            down()
            threading.Timer(OUTAGE_SECONDS, up).start()

    return fault


def assert_sent_once_after_the_outage(
    senders: list[RunningService], mail_server: MailServer, back: list[str]
) -> None:
    first = senders[0]
    sent = wait_for_status(first, "user.created/u-1", "sent", timeout=30)
    assert back, "the database outage did not happen"
    assert sent["sent_at"] >= back[0], "marked sent before the database came back"
    assert len(mail_server.received.all()) == 1
    assert len(sent_events(first)) == 1


def test_a_sqlite_database_locked_after_the_server_took_the_mail_does_not_send_it_twice(
    tmp_path: Path, mail_server: MailServer
) -> None:
    path = tmp_path / "notification.db"
    url = f"sqlite:///{path}"
    holder: list[sqlite3.Connection] = []
    back: list[str] = []

    def lock() -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN IMMEDIATE")
        holder.append(connection)

    def unlock() -> None:
        back.append(store.now())
        holder[0].execute("COMMIT")
        holder[0].close()

    mail_server.script.on_accept = outage_once(lock, unlock)
    # Two senders on the database; leases far shorter than the outage, busy waits short.
    sending = replace(SENDING, lease_seconds=1.2)
    senders = [
        start(url, smtp_settings(mail_server.port), sending=sending, kit=quick_database(url, 0.3))
        for _ in range(2)
    ]
    try:
        assert user_created(senders[0]).status == 202
        assert_sent_once_after_the_outage(senders, mail_server, back)
    finally:
        for running in senders:
            running.close()


@pytest.fixture
def own_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL server of this test alone, which it may stop (never the shared one)."""
    reason = unavailable_reason()
    require(reason is None, f"{reason} -> `apt-get install postgresql`")
    with private_server() as server:
        yield server


@pytest.mark.postgres
def test_postgresql_down_after_the_server_took_the_mail_does_not_send_it_twice(
    own_postgres: PrivateServer, mail_server: MailServer
) -> None:
    back: list[str] = []

    def up() -> None:
        back.append(store.now())
        own_postgres.up()

    mail_server.script.on_accept = outage_once(own_postgres.down, up)
    sending = replace(SENDING, lease_seconds=1.2)
    url = own_postgres.url
    senders = [
        start(url, smtp_settings(mail_server.port), sending=sending, kit=quick_database(url, 1.0))
        for _ in range(2)
    ]
    try:
        assert user_created(senders[0]).status == 202
        assert_sent_once_after_the_outage(senders, mail_server, back)
    finally:
        for running in senders:
            running.close()


# -- several processes ----------------------------------------------------------------------------


def test_two_gunicorn_servers_on_one_database_send_every_mail_once(
    database_url: str, mail_server: MailServer, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_server.port),
        "MAIL_FROM": MAIL_FROM,
        "OUTBOX_RELAY": "0",  # notification.sent stays in the outbox, where the test counts it
        "WEB_CONCURRENCY": "2",  # two worker processes each: four senders in all
        "LOG_LEVEL": "WARNING",
    }
    app = "services.notification.app:create_app()"
    servers = [
        ServedApp(app, tmp_path / f"gunicorn-{n}.log", env=env, cwd=tmp_path) for n in range(2)
    ]
    users = [f"u-{number}" for number in range(40)]
    try:
        for server in servers:
            server.start()

        def post(number: int) -> int:
            user = users[number]
            data = {"user_id": user, "name": "Ada", "email": f"{user}@example.com"}
            headers, body = to_binary(
                saga_event("user.created", data, subject=user, source="/shop/customer")
            )
            server = servers[number % len(servers)]
            with server.explained():
                return requests.post(server.url, data=body, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(post, range(len(users)))) == {202}

        engine = create_engine(database_url)
        try:
            wait_for(lambda: sent_count(engine) == len(users), timeout=30, what="every mail sent")
            with engine.connect() as connection:
                emitted = connection.execute(
                    sa.select(sa.func.count()).where(outbox.c.type == "notification.sent")
                ).scalar_one()
        finally:
            engine.dispose()
    finally:
        for server in servers:
            server.stop()
    ids = Counter(mail["Message-ID"] for mail in mail_server.received.all())
    assert len(ids) == len(users) and set(ids.values()) == {1}, ids.most_common(3)
    assert emitted == len(users)


def sent_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(store.notifications.c.status == store.SENT)
        return int(connection.execute(query).scalar_one())
