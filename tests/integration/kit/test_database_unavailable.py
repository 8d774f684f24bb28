"""A database that is locked or gone, under gunicorn: 503 with Retry-After on `POST /` and on a
JSON route, within DATABASE_WAIT_SECONDS, never a 500; the same requests succeed afterwards."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import POSTGRES_REMEDY, require
from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request
from tests.support.postgres_server import PrivateServer, private_server, unavailable_reason
from tests.support.processes import ServedApp, wait_for

WAIT_SECONDS = 0.5


def effects(url: str, event_id: str) -> list[str]:
    rows = requests.get(f"{url}/effects", timeout=10).json()
    return [row["note"] for row in rows if row["event_id"] == event_id]


def assert_retry_later(response: requests.Response, retry_after: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == retry_after
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json()["error"], str)


def timed_post(url: str, **kwargs: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(url, timeout=30, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def test_a_locked_sqlite_database_is_503_within_the_wait_then_the_requests_succeed(
    tmp_path: Path,
) -> None:
    app = serve_kit_app(tmp_path, DATABASE_WAIT_SECONDS=str(WAIT_SECONDS), OUTBOX_RELAY="0")
    headers, body = binary_request("test.effect", {}, id="locked-1")
    order = {"order_id": "locked-order"}
    holder = sqlite3.connect(tmp_path / "kittest.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, holding the lock
        event, event_took = timed_post(app.url, data=body, headers=headers)
        route, route_took = timed_post(f"{app.url}/orders", json=order)
        ready = requests.get(f"{app.url}/readyz", timeout=5)
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        failed = app.logs()
    try:
        assert_retry_later(event, "1")
        assert_retry_later(route, "1")
        for took in (event_took, route_took):
            assert WAIT_SECONDS * 0.9 <= took < WAIT_SECONDS + 3, "waited DATABASE_WAIT_SECONDS"
        assert ready.status_code == 200, "busy is not unready: readers do not wait for writers"
        assert "Traceback" not in failed, failed
        # Released: the very same requests go through, once.
        assert requests.post(app.url, data=body, headers=headers, timeout=10).status_code == 200
        assert requests.post(f"{app.url}/orders", json=order, timeout=10).status_code == 201
        assert effects(app.url, "locked-1") == ["effect"]
        assert effects(app.url, "locked-order") == ["order"]
    finally:
        app.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL server of this test's own, which it may stop (never the shared one)."""
    reason = unavailable_reason()
    require(reason is None, f"{reason} -> {POSTGRES_REMEDY}")
    with private_server() as server:
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE "kittest"'))
        admin.dispose()
        yield server


@pytest.mark.postgres
def test_postgresql_going_away_is_503_and_unready_until_it_is_back(
    tmp_path: Path, private_postgres: PrivateServer
) -> None:
    url = sa.make_url(private_postgres.url).set(database="kittest")
    app: ServedApp = serve_kit_app(
        tmp_path, DATABASE_URL=url.render_as_string(hide_password=False), OUTBOX_RELAY="0"
    )
    headers, body = binary_request("test.effect", {}, id="pg-down-1")
    order = {"order_id": "pg-down-order"}
    try:
        assert requests.post(f"{app.url}/orders", json={"order_id": "before"}, timeout=10).ok
        private_postgres.down()
        try:
            event, _ = timed_post(app.url, data=body, headers=headers)
            route, _ = timed_post(f"{app.url}/orders", json=order)
            ready = requests.get(f"{app.url}/readyz", timeout=10)
        finally:
            private_postgres.up()
        assert_retry_later(event, "5")
        assert_retry_later(route, "5")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert "Traceback" not in app.logs(), app.logs()

        def placed() -> requests.Response | None:
            response = requests.post(f"{app.url}/orders", json=order, timeout=10)
            return response if response.status_code == 201 else None

        wait_for(placed, timeout=30, what="POST /orders once PostgreSQL is back")
        assert requests.post(app.url, data=body, headers=headers, timeout=10).status_code == 200
        assert effects(app.url, "pg-down-1") == ["effect"]
        assert effects(app.url, "pg-down-order") == ["order"]
        assert requests.get(f"{app.url}/readyz", timeout=10).status_code == 200
    finally:
        app.stop()
