"""A busy or unreachable database is "retry later", 503 with Retry-After, not a 500
(kit/unavailable.py), on `POST /` and on JSON routes alike; a bug stays a 500."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent
from flask import Blueprint, Response

from kit import HandlerSet, KitConfig, Service, Transaction, create_service, current_service
from kit.api import json_response
from kit.config import ConfigError
from kit.database import create_engine
from kit.errors import RetryLater
from kit.unavailable import BUSY_RETRY_AFTER, UNREACHABLE_RETRY_AFTER, retry_later_for
from tests.support.events import binary_request
from tests.support.processes import free_port

WAIT = 0.2

metadata = sa.MetaData()
rows = sa.Table(
    "rows",
    metadata,
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("what", sa.String(50), nullable=False),
)
handlers = HandlerSet()


@handlers.on("test.write")
def write(event: CloudEvent, tx: Transaction) -> None:
    tx.connection.execute(rows.insert().values(what="event"))


routes = Blueprint("writes", __name__)


@routes.post("/rows")
def add_row() -> Response:
    with current_service().transaction() as tx:
        tx.connection.execute(rows.insert().values(what="route"))
    return json_response(201, {})


@routes.get("/missing")
def read_a_missing_table() -> Response:
    with current_service().transaction() as tx:
        tx.connection.execute(sa.text("SELECT * FROM no_such_table"))
    return json_response(200, {})


def service_on(database_url: str, *, start: bool = True) -> Service:
    config = KitConfig(
        service="writes",
        database_url=database_url,
        source="/shop/writes",
        relay_enabled=False,
        log_level="WARNING",
        database_wait_seconds=WAIT,
    )
    service = create_service("writes", handlers, config=config, metadata=metadata)
    service.app.register_blueprint(routes)
    return service.start() if start else service


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock (BEGIN IMMEDIATE) until the block ends."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def count(service: Service) -> int:
    assert service.engine is not None
    with service.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(rows)).scalar())


def assert_retry_later(response: object, retry_after: int) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status == 503, response.get_data()  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == str(retry_after)  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/json"  # type: ignore[attr-defined]
    assert set(response.get_json()) == {"error"}  # type: ignore[attr-defined]


# -- which errors are transient ------------------------------------------------------------------


def caught(action: object) -> BaseException:
    try:
        action()  # type: ignore[operator]
    except Exception as error:
        return error
    raise AssertionError("no error")


def test_sqlite_locked_by_another_writer_is_busy(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite", wait_seconds=WAIT)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))  # creates the file
    with write_lock(tmp_path / "db.sqlite"):

        def begin() -> None:
            with engine.begin():
                pass

        started = time.monotonic()
        error = caught(begin)
        waited = time.monotonic() - started
    assert isinstance(error, sa.exc.OperationalError)
    assert "database is locked" in str(error)
    retry = retry_later_for(error)
    assert retry is not None and retry.retry_after_seconds == BUSY_RETRY_AFTER
    assert WAIT * 0.9 <= waited < WAIT + 2, "the wait for the lock is DATABASE_WAIT_SECONDS"
    engine.dispose()


def test_sqlite_bugs_stay_bugs(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite", wait_seconds=WAIT)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))

    def missing_table() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT * FROM no_such_table"))

    def duplicate() -> None:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))

    no_table = caught(missing_table)
    assert isinstance(no_table, sa.exc.OperationalError), "sqlite3 calls this operational too"
    assert retry_later_for(no_table) is None
    assert isinstance(caught(duplicate), sa.exc.IntegrityError)
    assert retry_later_for(caught(duplicate)) is None
    assert retry_later_for(ValueError("a bug")) is None
    engine.dispose()


def test_postgresql_refusing_connections_is_unreachable() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/none", wait_seconds=1)
    error = caught(engine.connect)
    assert isinstance(error, sa.exc.OperationalError)
    retry = retry_later_for(error)
    assert retry is not None and retry.retry_after_seconds == UNREACHABLE_RETRY_AFTER
    engine.dispose()


def test_no_pooled_connection_in_time_is_busy() -> None:
    retry = retry_later_for(sa.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"))
    assert retry is not None and retry.retry_after_seconds == BUSY_RETRY_AFTER


@pytest.mark.postgres
def test_postgresql_connection_killed_by_an_administrator_is_unreachable(
    postgres_database: str,
) -> None:
    engine = create_engine(postgres_database, wait_seconds=1)
    admin = sa.create_engine(postgres_database, isolation_level="AUTOCOMMIT")

    def killed_mid_transaction() -> None:
        with engine.begin() as connection:
            pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            connection.execute(sa.text("SELECT 1"))

    def missing_table() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT * FROM no_such_table"))

    error = caught(killed_mid_transaction)
    assert isinstance(error, sa.exc.DBAPIError), error
    assert retry_later_for(error) is not None, error
    bug = caught(missing_table)
    assert isinstance(bug, sa.exc.ProgrammingError)
    assert retry_later_for(bug) is None
    engine.dispose()
    admin.dispose()


# -- what a service answers ----------------------------------------------------------------------


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[Service]:
    service = service_on(f"sqlite:///{tmp_path}/writes.db")
    yield service
    service.close()


def test_a_locked_sqlite_database_is_503_then_works_once_released(
    sqlite_service: Service, tmp_path: Path
) -> None:
    client = sqlite_service.app.test_client()
    headers, body = binary_request("test.write", {}, id="w-1")
    with write_lock(tmp_path / "writes.db"):
        assert_retry_later(client.post("/", headers=headers, data=body), BUSY_RETRY_AFTER)
        assert_retry_later(client.post("/rows"), BUSY_RETRY_AFTER)
        # Readers are not blocked by a writer (WAL): the service is ready, only busy.
        assert client.get("/readyz").status_code == 200
    assert count(sqlite_service) == 0
    assert client.post("/", headers=headers, data=body).status_code == 202
    assert client.post("/rows").status_code == 201
    assert count(sqlite_service) == 2


def test_a_bug_in_a_route_is_still_a_500(sqlite_service: Service) -> None:
    sqlite_service.app.config["PROPAGATE_EXCEPTIONS"] = False  # as under gunicorn
    response = sqlite_service.app.test_client().get("/missing")
    assert response.status_code == 500
    assert response.get_json() == {"error": response.get_json()["error"]}


def test_a_retry_later_raised_by_a_route_is_503(sqlite_service: Service) -> None:
    @sqlite_service.app.get("/busy")
    def busy() -> Response:
        raise RetryLater("the card processor is busy", retry_after_seconds=7)

    response = sqlite_service.app.test_client().get("/busy")
    assert_retry_later(response, 7)
    assert response.get_json() == {"error": "the card processor is busy"}


def test_an_unreachable_postgresql_is_503_on_both_doors_and_not_ready() -> None:
    # Not started: its tables cannot be made without a server; what it answers is the point.
    service = service_on(f"postgresql://postgres@127.0.0.1:{free_port()}/none", start=False)
    try:
        client = service.app.test_client()
        headers, body = binary_request("test.write", {}, id="w-2")
        assert_retry_later(client.post("/", headers=headers, data=body), UNREACHABLE_RETRY_AFTER)
        assert_retry_later(client.post("/rows"), UNREACHABLE_RETRY_AFTER)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["status"] == "not ready"
    finally:
        service.close()


def test_the_database_wait_and_the_key_retention_are_read_from_the_environment() -> None:
    config = KitConfig.from_env(
        "x", {"DATABASE_WAIT_SECONDS": "0.5", "IDEMPOTENCY_KEY_HOURS": "48"}
    )
    assert (config.database_wait_seconds, config.idempotency_key_hours) == (0.5, 48.0)
    defaults = KitConfig.from_env("x", {})
    assert (defaults.database_wait_seconds, defaults.idempotency_key_hours) == (5.0, 24.0)
    for name in ("DATABASE_WAIT_SECONDS", "IDEMPOTENCY_KEY_HOURS"):
        for bad in ("0", "-1", "soon", "nan", "inf"):
            with pytest.raises(ConfigError, match=name):
                KitConfig.from_env("x", {name: bad})
