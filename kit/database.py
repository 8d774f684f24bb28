"""The service's database: an engine for DATABASE_URL (SQLite or PostgreSQL), the kit's tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from kit.config import DEFAULT_DATABASE_WAIT_SECONDS

KIT_METADATA = sa.MetaData()
_READ_ONLY_OPTION = "kit_read_only"
#: Execution options of a connection that only reads (`connection.execution_options(**READ_ONLY)`):
#: on SQLite its transactions do not take the write lock, so they never queue behind a writer.
READ_ONLY: dict[str, Any] = {_READ_ONLY_OPTION: True}


def normalise_url(url: str) -> URL:
    """A SQLAlchemy URL; a bare `postgresql://` DSN gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine(url: str, *, wait_seconds: float = DEFAULT_DATABASE_WAIT_SECONDS) -> Engine:
    """An engine whose transactions serialise writers correctly on both SQLite and PostgreSQL.

    `wait_seconds` bounds how long a transaction waits for SQLite's write lock, and for a
    pooled or a new PostgreSQL connection; past it the error is one that kit/unavailable.py
    answers with 503 (retry later).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, wait_seconds)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        # libpq counts whole seconds and treats less than 2 as 2.
        connect_args["connect_timeout"] = max(2, math.ceil(wait_seconds))
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=wait_seconds,
        connect_args=connect_args,
    )


def _sqlite_engine(url: URL, wait_seconds: float) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": wait_seconds}
    )
    busy_timeout_ms = max(1, round(wait_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that the BEGIN below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            # A reader never waits for the writer (WAL): it reads the last commit.
            connection.exec_driver_sql("BEGIN")
            return
        # Writers queue at BEGIN rather than failing with "database is locked" at COMMIT.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def insert_ignoring_duplicates(
    connection: sa.Connection, table: sa.Table, row: dict[str, Any]
) -> bool:
    """Insert `row` unless its key exists; True when inserted (waits for a concurrent inserter)."""
    dialect = connection.dialect.name
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).values(row).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(row).on_conflict_do_nothing()
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    # RETURNING rather than rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    key = next(iter(table.primary_key.columns))
    return connection.execute(statement.returning(key)).first() is not None
