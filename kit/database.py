"""The service's database: an engine for DATABASE_URL (SQLite or PostgreSQL), the kit's tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

KIT_METADATA = sa.MetaData()


def normalise_url(url: str) -> URL:
    """A SQLAlchemy URL; a bare `postgresql://` DSN gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine(url: str) -> Engine:
    """An engine whose transactions serialise writers correctly on both SQLite and PostgreSQL."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
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


def create_tables(engine: Engine, *metadatas: sa.MetaData) -> None:
    """Create the kit's tables and the service's own, when they do not exist yet."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Workers starting together would otherwise race on CREATE TABLE.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
        for metadata in (KIT_METADATA, *metadatas):
            metadata.create_all(connection)
