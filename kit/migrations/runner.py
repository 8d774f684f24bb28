"""How a service's database gets its schema: Alembic histories, brought to their heads at start.

A service's database holds two histories, each recorded in its own version table: the kit's
tables (kit/migrations, `alembic_version_kit`) and the service's own
(services/<name>/migrations, `alembic_version_<name>`). `upgrade` runs both, kit first, in one
transaction that concurrent starters queue on (PostgreSQL: an advisory lock; SQLite: BEGIN
IMMEDIATE), so gunicorn workers starting together migrate once. A database that main's
`create_all` made before there were migrations (the history's tables, no version table) is
recognised and stamped at the history's first revision, which is that schema.

`python -m kit.migrate` (kit/migrate.py) runs the same code for operators and developers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

log = logging.getLogger("shop.kit.migrate")

# Where the one revision template of every history lives (script.py.mako).
TEMPLATE_DIRECTORY = Path(__file__).parent
# v0001_initial_schema.py: a module name ruff and mypy accept.
FILE_TEMPLATE = "v%(rev)s_%(slug)s"
# Taken by whoever changes a service's schema on PostgreSQL, until its transaction ends.
POSTGRES_LOCK_KEY = 727274
# How long a SQLite starter waits for another one's migration (milliseconds).
SQLITE_WAIT_MS = 600_000
# alembic.op and alembic.context are module-level proxies: one migration per process at a time.
_ALEMBIC_PROXIES = threading.Lock()


class MigrationError(RuntimeError):
    """The database's schema cannot be brought to, or is not at, the head the code needs."""


@dataclass(frozen=True)
class History:
    """The revisions of one set of tables (the kit's or a service's), in their own version table.

    `metadata` is the tables as the code declares them: the head revision must create exactly
    those (tests/integration/kit/test_migrations.py). `legacy_tables` are the tables that
    `create_all` made before the history existed: a database holding them and no version
    table is at the first revision.
    """

    name: str
    versions: Path
    metadata: sa.MetaData
    legacy_tables: tuple[str, ...] = ()

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def script(self) -> ScriptDirectory:
        """Alembic's view of the revision files."""
        return ScriptDirectory(
            TEMPLATE_DIRECTORY,
            version_locations=[self.versions],
            file_template=FILE_TEMPLATE,
            messaging_opts={"quiet": True},
        )

    def head(self) -> str:
        head = self.script().get_current_head()
        if head is None:
            raise MigrationError(f"the {self.name} history in {self.versions} has no revision")
        return head


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did to one history: its revision before and after (None: no version)."""

    history: str
    before: str | None
    after: str | None
    stamped: bool = False


def upgrade(
    engine: Engine, histories: Sequence[History], *, unversioned: Sequence[sa.MetaData] = ()
) -> list[Upgrade]:
    """Bring each history to its head, in order, in one transaction; then create the tables of
    `unversioned` metadata that do not exist (a test app's tables, which have no history)."""
    done: list[Upgrade] = []
    with _ALEMBIC_PROXIES, schema_transaction(engine) as connection:
        for history in histories:
            done.append(_upgrade_history(connection, history))
        for metadata in unversioned:
            metadata.create_all(connection)
    for step in done:
        if step.before != step.after:
            log.info(
                "schema of %s upgraded from %s to %s",
                step.history,
                "the tables create_all made" if step.stamped else step.before or "nothing",
                step.after,
                extra={"outcome": "migrated"},
            )
    return done


def verify(engine: Engine, histories: Sequence[History]) -> None:
    """Fail unless every history is at its head (a service whose schema someone else migrates)."""
    with engine.connect() as connection:
        found = {history.name: current(connection, history) for history in histories}
    heads = {history.name: history.head() for history in histories}
    behind = [
        f"{name} is at {found[name] or 'nothing'}, the code needs {head}"
        for name, head in heads.items()
        if found[name] != head
    ]
    if behind:
        raise MigrationError(
            f"the database's schema is not the code's: {'; '.join(behind)}"
            " (run `python -m kit.migrate upgrade --service <name>` with its DATABASE_URL)"
        )


def current(connection: sa.Connection, history: History) -> str | None:
    """The revision the database records for a history (None: none recorded)."""
    context = MigrationContext.configure(connection, opts={"version_table": history.version_table})
    heads = context.get_current_heads()
    if len(heads) > 1:
        raise MigrationError(f"the {history.name} history has several heads: {', '.join(heads)}")
    return heads[0] if heads else None


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that changes the schema, one at a time per database.

    On SQLite, foreign keys are off while it runs, as SQLite's procedure for altering a table
    asks (a batch migration copies a table and drops the old one, which would delete or refuse
    the rows referencing it), and are checked before it commits; and a starter waits for the
    one migrating however long that takes, not the engine's few seconds.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY}
                    )
                yield connection
            return
        restore = {
            name: _sqlite_pragma(connection, name, value)
            for name, value in (("foreign_keys", 0), ("busy_timeout", SQLITE_WAIT_MS))
        }
        try:
            with connection.begin():  # BEGIN IMMEDIATE (kit.database)
                yield connection
                _check_foreign_keys(connection)
        finally:
            for name, value in restore.items():
                _sqlite_pragma(connection, name, value)


def _upgrade_history(connection: sa.Connection, history: History) -> Upgrade:
    script = history.script()
    before = current(connection, history)
    stamped = before is None and _holds_legacy_tables(connection, history)

    def steps(heads: Any, _context: MigrationContext) -> Any:
        # What alembic.command.upgrade hands the migration context.
        return script._upgrade_revs("head", heads)

    with EnvironmentContext(Config(), script, fn=steps, destination_rev="head") as environment:
        environment.configure(
            connection=connection,
            version_table=history.version_table,
            target_metadata=history.metadata,
        )
        if stamped:
            environment.get_context().stamp(script, _first_revision(history, script))
        environment.run_migrations()
    return Upgrade(history.name, before, current(connection, history), stamped)


def _holds_legacy_tables(connection: sa.Connection, history: History) -> bool:
    """Whether the database was made by `create_all` before the history (all its tables, or
    none of them; anything between is no schema the history knows)."""
    present = set(sa.inspect(connection).get_table_names()) & set(history.legacy_tables)
    if present and present != set(history.legacy_tables):
        missing = sorted(set(history.legacy_tables) - present)
        raise MigrationError(
            f"the database has the {history.name} tables {', '.join(sorted(present))} but not"
            f" {', '.join(missing)}, and no {history.version_table}: it is no schema the"
            f" {history.name} history knows; repair it by hand"
        )
    return bool(present)


def _first_revision(history: History, script: ScriptDirectory) -> str:
    bases = script.get_bases()
    if len(bases) != 1:
        raise MigrationError(f"the {history.name} history must start at one revision: {bases}")
    return bases[0]


def _sqlite_pragma(connection: sa.Connection, name: str, value: int) -> int:
    """Set a pragma, returning its previous value. On the DBAPI connection: through SQLAlchemy
    the statement would begin a transaction first, and inside one SQLite ignores foreign_keys."""
    driver = connection.connection.driver_connection
    assert driver is not None
    previous = int(driver.execute(f"PRAGMA {name}").fetchone()[0])
    driver.execute(f"PRAGMA {name}={int(value)}")
    return previous


def _check_foreign_keys(connection: sa.Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        rows = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in broken[:10])
        raise MigrationError(f"the migration left rows whose foreign key points nowhere: {rows}")
