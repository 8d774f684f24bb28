"""The services' schemas come from migrations: upgrading main's keeps every row, head = the code.

tests/fixtures/schemas/<service>.<dialect>.sql is the schema main's `create_all` made before
there were migrations (README.md there). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from kit.config import KitConfig
from kit.database import KIT_METADATA, create_engine
from kit.migrate import service_history, write_revision
from kit.migrations import KIT_HISTORY
from kit.migrations.runner import History, MigrationError, current, upgrade
from kit.service import Service
from tests.conftest import REPO_ROOT

SERVICES = ["customer", "deadletter", "inventory", "notification", "order", "payment"]
SCHEMAS = REPO_ROOT / "tests" / "fixtures" / "schemas"

# Rows of every table of main's schemas, by table in primary key order, as a service could have
# written them: NULLs where a column allows them, bytes that are not UTF-8, floats and integers
# past 32 bits.
KIT_ROWS: dict[str, list[dict[str, Any]]] = {
    "kit_outbox": [
        {
            "seq": 1,
            "event_id": "e-1",
            "type": "order.created",
            "headers": '{"ce-id": "e-1"}',
            "body": b'{"order_id": "o-1"}',
            "created_at": 1764770000.125,
            "attempts": 0,
            "next_attempt_at": 1764770000.125,
            "lease_until": 0.0,
            "lease_owner": None,
            "last_error": None,
        },
        {
            "seq": 2,
            "event_id": "e-2",
            "type": "order.cancelled",
            "headers": "{}",
            "body": b"\xff\x00\xfe",
            "created_at": 1764770001.5,
            "attempts": 3,
            "next_attempt_at": 1764770042.75,
            "lease_until": 1764770010.0,
            "lease_owner": "worker-7",
            "last_error": "503 from the broker",
        },
    ],
    "kit_processed_events": [
        {
            "source": "/shop/order",
            "id": "e-9",
            "type": "order.created",
            "status": 200,
            "reply_headers": '{"ce-type": "inventory.reserved"}',
            "reply_body": b'{"order_id": "o-1"}',
            "handled_at": 1764770002.0,
        },
        {
            "source": "/shop/payment",
            "id": "e-10",
            "type": "payment.authorized",
            "status": None,
            "reply_headers": None,
            "reply_body": None,
            "handled_at": 1764770003.0,
        },
    ],
}
SERVICE_ROWS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "customer": {
        "users": [
            {
                "id": "u-1",
                "name": "Ada Lovelace",
                "email": "Ada@Example.com",
                "email_key": "ada@example.com",
                "created_at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                "id": "u-2",
                "name": "Zoë Ünal",
                "email": "zoe@example.org",
                "email_key": "zoe@example.org",
                "created_at": "2025-12-03T10:00:01.000+00:00",
            },
        ]
    },
    "order": {
        "orders": [
            {
                "id": "o-1",
                "customer_id": "u-1",
                "currency": "EUR",
                "total": 2**40,
                "status": "confirmed",
                "code": None,
                "reason": None,
                "inventory": "reserved",
                "payment": "authorized",
                "placed": True,
                "created_at": "2025-12-03T10:00:00.000+00:00",
                "updated_at": "2025-12-03T10:00:02.000+00:00",
            },
            {
                "id": "o-2",
                "customer_id": None,
                "currency": None,
                "total": None,
                "status": "cancelled",
                "code": "unknown_order",
                "reason": "outcomes arrived for an order never placed",
                "inventory": None,
                "payment": "declined",
                "placed": False,
                "created_at": "2025-12-03T10:01:00.000+00:00",
                "updated_at": "2025-12-03T10:01:00.000+00:00",
            },
        ],
        "order_lines": [
            {"order_id": "o-1", "line_no": 1, "sku": "tea", "quantity": 2, "unit_price": 450},
            {"order_id": "o-1", "line_no": 2, "sku": "cup", "quantity": 1, "unit_price": 2**33},
        ],
        "order_events": [
            {
                "seq": 1,
                "order_id": "o-1",
                "direction": "sent",
                "type": "order.created",
                "event_id": "e-1",
                "source": None,
                "at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                "seq": 2,
                "order_id": "o-1",
                "direction": "received",
                "type": "inventory.reserved",
                "event_id": "e-3",
                "source": "/shop/inventory",
                "at": "2025-12-03T10:00:01.000+00:00",
            },
        ],
    },
    "inventory": {
        "stock": [
            {
                "sku": "cup",
                "available": 2**40,
                "reserved": 0,
                "sold": 0,
                "stocked": 2**40,
                "updated_at": "2025-12-03T10:00:01.000+00:00",
            },
            {
                "sku": "tea",
                "available": 5,
                "reserved": 2,
                "sold": 3,
                "stocked": 10,
                "updated_at": "2025-12-03T10:00:00.000+00:00",
            },
        ],
        "reservations": [
            {
                "order_id": "o-1",
                "state": "reserved",
                "code": None,
                "reason": None,
                "updated_at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                "order_id": "o-2",
                "state": "rejected",
                "code": "out_of_stock",
                "reason": "tea: 9 wanted, 5 available",
                "updated_at": "2025-12-03T10:00:01.000+00:00",
            },
        ],
        "reservation_lines": [
            {"order_id": "o-1", "sku": "cup", "quantity": 1},
            {"order_id": "o-1", "sku": "tea", "quantity": 2},
        ],
    },
    "payment": {
        "payments": [
            {
                "order_id": "o-1",
                "state": "authorized",
                "authorization_id": "auth-1",
                "amount": 2**40,
                "currency": "EUR",
                "code": None,
                "reason": None,
                "updated_at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                "order_id": "o-2",
                "state": "declined",
                "authorization_id": None,
                "amount": None,
                "currency": None,
                "code": "card_declined",
                "reason": "the card processor declined it",
                "updated_at": "2025-12-03T10:00:01.000+00:00",
            },
        ]
    },
    "notification": {
        "recipients": [
            {"customer_id": "u-1", "name": "Ada Lovelace", "email": "ada@example.com"},
            {"customer_id": "u-2", "name": "Zoë Ünal", "email": "zoe@example.org"},
        ],
        "notifications": [
            {
                "seq": 1,
                "id": "user.created/u-1",
                "cause_type": "user.created",
                "cause_id": "e-20",
                "cause_source": "/shop/customer",
                "subject": "u-1",
                "recipient": "ada@example.com",
                "mail_subject": "Welcome",
                "message_id": "<m-1@shop.example>",
                "status": "sent",
                "error": None,
                "sent_at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                "seq": 2,
                "id": "order.cancelled/o-2",
                "cause_type": "order.cancelled",
                "cause_id": "e-21",
                "cause_source": "/shop/order",
                "subject": "o-2",
                "recipient": "zoe@example.org",
                "mail_subject": "Your order was cancelled",
                "message_id": "<m-2@shop.example>",
                "status": "refused",
                "error": "550 mailbox unavailable",
                "sent_at": "2025-12-03T10:00:01.000+00:00",
            },
        ],
    },
    "deadletter": {
        "dead_letters": [
            {
                "id": 1,
                "event_id": "e-30",
                "source": "/shop/order",
                "type": "order.created",
                "subject": "o-1",
                "destination": "http://inventory.shop.svc.cluster.local",
                "error_code": 500,
                "attributes": '{"id": "e-30", "knativeerrorcode": "500"}',
                "data": b"\x00\x01binary",
                "received_at": 1764770000.5,
                "redelivered_at": 1764770100.25,
            },
            {
                "id": 2,
                "event_id": "e-31",
                "source": "/manual",
                "type": "user.created",
                "subject": None,
                "destination": None,
                "error_code": None,
                "attributes": "{}",
                "data": None,
                "received_at": 1764770001.5,
                "redelivered_at": None,
            },
        ],
        "dead_letter_redeliveries": [
            {
                "id": 1,
                "dead_letter_id": 1,
                "attempted_at": 1764770050.0,
                "url": "http://broker-ingress/shop/default",
                "status": None,
                "outcome": "unreachable",
                "response": "connection refused",
            },
            {
                "id": 2,
                "dead_letter_id": 1,
                "attempted_at": 1764770100.25,
                "url": "http://broker-ingress/shop/default",
                "status": 202,
                "outcome": "accepted",
                "response": "",
            },
        ],
    },
}


# The rows of SERVICE_ROWS as they read at head, where a later revision changed them: every other
# row reads as it was written.
_NOTIFICATION_OUTBOX = {  # notification 0002: the mail outbox
    "body": None,
    "traceparent": None,
    "attempts": 1,
    "next_attempt_at": 0.0,
    "lease_until": 0.0,
    "lease_owner": None,
}
ROWS_AT_HEAD: dict[str, dict[str, list[dict[str, Any]]]] = {
    "notification": {
        "notifications": [
            {
                **SERVICE_ROWS["notification"]["notifications"][0],
                **_NOTIFICATION_OUTBOX,
                "created_at": "2025-12-03T10:00:00.000+00:00",
            },
            {
                **SERVICE_ROWS["notification"]["notifications"][1],
                **_NOTIFICATION_OUTBOX,
                "status": "failed",
                "sent_at": None,
                "created_at": "2025-12-03T10:00:01.000+00:00",
            },
        ]
    }
}


def histories(service: str | None) -> list[History]:
    """What a service's start runs: the kit's history, then the service's (None: the kit's)."""
    return [KIT_HISTORY] if service is None else [KIT_HISTORY, service_history(service)]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def create_main_schema(engine: sa.Engine, service: str) -> None:
    """The tables main's create_all made for the service, without a version table."""
    sql = (SCHEMAS / f"{service}.{engine.dialect.name}.sql").read_text(encoding="utf-8")
    with engine.begin() as connection:
        for statement in sql.split(";\n"):
            if statement.strip():
                connection.exec_driver_sql(statement)


def insert_rows(engine: sa.Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    tables = Reflected(engine)
    with engine.begin() as connection:
        for name in tables.sorted_table_names():
            if name in rows:
                connection.execute(tables.tables[name].insert(), rows[name])


class Reflected:
    """The tables a database holds (version tables left out), as SQLAlchemy reflects them."""

    def __init__(self, engine: sa.Engine) -> None:
        self.metadata = sa.MetaData()
        self.metadata.reflect(engine)
        self.tables = {
            name: table
            for name, table in self.metadata.tables.items()
            if not name.startswith("alembic_version_")
        }

    def sorted_table_names(self) -> list[str]:
        return [t.name for t in self.metadata.sorted_tables if t.name in self.tables]


def all_rows(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary key order."""
    tables = Reflected(engine)
    with engine.connect() as connection:
        return {
            name: [
                dict(row._mapping)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in tables.tables.items()
        }


def kept_and_added(
    after: dict[str, list[dict[str, Any]]], before: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The rows of the tables that were there before, and the rows of the tables added since
    (which should have none)."""
    kept = {name: rows for name, rows in after.items() if name in before}
    added = {name: rows for name, rows in after.items() if name not in before and rows}
    return kept, added


def schema_of(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Everything the database says about its tables (version tables left out)."""
    inspector = sa.inspect(engine)
    schema: dict[str, dict[str, Any]] = {}
    for name in sorted(inspector.get_table_names()):
        if name.startswith("alembic_version_"):
            continue
        schema[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(name)
            ],
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    str(fk.get("options")),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (str(i["name"]), tuple(map(str, i["column_names"])), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (str(u["name"]), tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "checks": sorted(
                (str(c["name"]), " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(name)
            ),
        }
    return schema


def drop_everything(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def revisions_at(engine: sa.Engine, service: str | None) -> dict[str, str | None]:
    with engine.connect() as connection:
        return {h.name: current(connection, h) for h in histories(service)}


def heads(service: str | None) -> dict[str, str]:
    return {h.name: h.head() for h in histories(service)}


def environment(database_url: str, **more: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "OUTBOX_RELAY": "0", "LOG_LEVEL": "WARNING", **more}


def start_service(service: str, env: dict[str, str]) -> Service:
    """The service's real app, made by its own factory from `env` (which starts it)."""
    module = importlib.import_module(f"services.{service}.app")
    config_classes = {
        "payment": module.__dict__.get("PaymentConfig"),
        "notification": module.__dict__.get("NotificationConfig"),
        "deadletter": module.__dict__.get("DeadletterConfig"),
    }
    config_class = config_classes.get(service)
    config = (
        KitConfig.from_env(service, env) if config_class is None else config_class.from_env(env)
    )
    app: Flask = module.create_app(config)
    running: Service = app.extensions["shop.kit"]
    return running


@pytest.mark.parametrize("service", SERVICES)
def test_starting_a_service_on_mains_schema_keeps_every_row_and_reaches_head(
    database_url: str, engine: sa.Engine, service: str
) -> None:
    create_main_schema(engine, service)
    rows = {**KIT_ROWS, **SERVICE_ROWS[service]}
    assert set(rows) == set(Reflected(engine).tables), "every table of main's schema gets rows"
    insert_rows(engine, rows)

    running = start_service(service, environment(database_url))
    try:
        at_head = {**rows, **ROWS_AT_HEAD.get(service, {})}
        assert kept_and_added(all_rows(engine), rows) == (at_head, {})
        assert revisions_at(engine, service) == heads(service)
    finally:
        running.close()


@pytest.mark.parametrize("service", SERVICES)
def test_mains_schema_upgraded_is_the_schema_of_a_new_database(
    engine: sa.Engine, service: str
) -> None:
    create_main_schema(engine, service)
    steps = upgrade(engine, histories(service))
    assert [(s.history, s.before, s.stamped) for s in steps] == [
        ("kit", None, True),
        (service, None, True),
    ], "main's tables are recognised (stamped at 0001), not created again"
    upgraded = schema_of(engine)
    drop_everything(engine)

    steps = upgrade(engine, histories(service))
    assert [(s.history, s.before, s.stamped) for s in steps] == [
        ("kit", None, False),
        (service, None, False),
    ]
    assert schema_of(engine) == upgraded


def first_revisions(service: str, directory: Path) -> list[History]:
    """The kit's and the service's histories cut down to their first revision."""
    cut = []
    for history in histories(service):
        script = history.script()
        (first,) = script.get_bases()
        revision = script.get_revision(first)
        assert revision is not None
        versions = directory / history.name
        versions.mkdir(parents=True)
        shutil.copy(revision.path, versions)
        cut.append(History(history.name, versions, history.metadata, history.legacy_tables))
    return cut


@pytest.mark.parametrize("service", SERVICES)
def test_the_first_revisions_make_exactly_the_schema_main_made(
    engine: sa.Engine, service: str, tmp_path: Path
) -> None:
    create_main_schema(engine, service)
    mains = schema_of(engine)
    drop_everything(engine)
    upgrade(engine, first_revisions(service, tmp_path))
    assert schema_of(engine) == mains


def declared_tables(*metadatas: sa.MetaData) -> sa.MetaData:
    """The tables of several histories' metadata, in one MetaData."""
    declared = sa.MetaData()
    for metadata in metadatas:
        for table in metadata.tables.values():
            table.to_metadata(declared)
    return declared


def differences(engine: sa.Engine, declared: sa.MetaData) -> list[Any]:
    """What Alembic's autogenerate finds between the database and `declared` (version tables
    left out): nothing, when the revisions made what the code declares."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": lambda name, kind, _: not str(name).startswith("alembic_")},
        )
        return list(compare_metadata(context, declared))


@pytest.mark.parametrize("service", [None, *SERVICES])
def test_the_head_revisions_make_the_tables_the_code_declares(
    engine: sa.Engine, service: str | None
) -> None:
    upgrade(engine, histories(service))
    declared = declared_tables(*(history.metadata for history in histories(service)))
    assert differences(engine, declared) == []
    # Autogenerate does not compare CHECK constraints: their names at least must agree.
    database = schema_of(engine)
    for name, table in declared.tables.items():
        checks = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        assert {check for check, _ in database[name]["checks"]} == checks, name


def test_a_kit_table_that_lost_its_migration_is_seen(engine: sa.Engine) -> None:
    """The head check above fails when the code declares what no revision made."""
    upgrade(engine, histories(None))
    declared = declared_tables(KIT_METADATA)
    declared.tables["kit_outbox"].append_column(sa.Column("priority", sa.Integer))
    diff = differences(engine, declared)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "kit_outbox", "priority")]


def _upgrade_after_all_are_ready(database_url: str, ready: Any) -> None:
    engine = create_engine(database_url)
    ready.wait()
    upgrade(engine, histories("order"))
    engine.dispose()


@pytest.mark.parametrize("schema", ["new", "main's"])
def test_workers_starting_together_migrate_the_database_once(
    database_url: str, engine: sa.Engine, schema: str
) -> None:
    if schema == "main's":
        create_main_schema(engine, "order")
        insert_rows(engine, {**KIT_ROWS, **SERVICE_ROWS["order"]})
    before = all_rows(engine)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(4)
    workers = [
        spawn.Process(target=_upgrade_after_all_are_ready, args=(database_url, ready))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 4
    assert revisions_at(engine, "order") == heads("order")
    assert kept_and_added(all_rows(engine), before) == (before, {})


def test_a_service_that_does_not_migrate_refuses_a_schema_behind_its_code(
    database_url: str, engine: sa.Engine
) -> None:
    env = environment(database_url, MIGRATE_AT_START="0")
    needs = f"kit is at nothing, the code needs {KIT_HISTORY.head()}"
    with pytest.raises(MigrationError, match=needs):
        start_service("order", env)
    assert Reflected(engine).tables == {}, "a service that does not migrate changes nothing"

    cli = subprocess.run(
        [sys.executable, "-m", "kit.migrate", "upgrade", "--service", "order"],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines() == [
        f"{name}: nothing -> {head}" for name, head in heads("order").items()
    ]
    start_service("order", env).close()


def test_a_database_with_some_of_mains_tables_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE kit_outbox (seq INTEGER PRIMARY KEY)")
    with pytest.raises(MigrationError, match="has the kit tables kit_outbox but not"):
        upgrade(engine, histories(None))
    assert revisions_at(engine, None) == {"kit": None}


def copied_history(history: History, directory: Path, metadata: sa.MetaData) -> History:
    """The history's revisions copied to `directory`, to add to them in a test."""
    shutil.copytree(history.versions, directory, ignore=shutil.ignore_patterns("__pycache__"))
    return History(history.name, directory, metadata, history.legacy_tables)


BATCH_REVISION = '''"""A change SQLite cannot make in place: batch mode rebuilds dead_letters."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("subject", existing_type=sa.String(1024), type_=sa.String(2048))
'''


def next_revision(history: History) -> str:
    return f"{int(history.head()) + 1:04d}"


def test_a_table_rebuilt_by_a_batch_migration_keeps_the_rows_that_reference_it(
    engine: sa.Engine, tmp_path: Path
) -> None:
    deadletter = copied_history(service_history("deadletter"), tmp_path / "versions", sa.MetaData())
    revision = next_revision(deadletter)
    source = BATCH_REVISION.format(revision=revision, down_revision=deadletter.head())
    (deadletter.versions / f"v{revision}_rebuild_dead_letters.py").write_text(source)
    create_main_schema(engine, "deadletter")
    insert_rows(engine, {**KIT_ROWS, **SERVICE_ROWS["deadletter"]})

    upgrade(engine, [KIT_HISTORY, deadletter])
    # On SQLite, dropping the old table with foreign keys on would cascade to the redeliveries.
    rows = {**KIT_ROWS, **SERVICE_ROWS["deadletter"]}
    assert kept_and_added(all_rows(engine), rows) == (rows, {})
    subject = next(
        c for c in Reflected(engine).tables["dead_letters"].columns if c.name == "subject"
    )
    assert getattr(subject.type, "length", None) == 2048, "the revision ran"
    with engine.connect() as connection:
        assert current(connection, deadletter) == revision


def test_a_new_revision_is_written_with_what_the_code_added(
    engine: sa.Engine, tmp_path: Path
) -> None:
    order = service_history("order")
    declared = declared_tables(order.metadata)
    declared.tables["orders"].append_column(sa.Column("note", sa.String(200), nullable=True))
    changed = copied_history(order, tmp_path / "versions", declared)
    revision = next_revision(changed)

    written = write_revision(changed, "orders.note")
    assert written.name == f"v{revision}_orders_note.py"
    assert "batch_op.add_column(sa.Column('note', sa.String(length=200)" in written.read_text()

    create_main_schema(engine, "order")
    insert_rows(engine, {**KIT_ROWS, **SERVICE_ROWS["order"]})
    upgrade(engine, [KIT_HISTORY, changed])
    assert revisions_at(engine, None) == {"kit": KIT_HISTORY.head()}
    with engine.connect() as connection:
        assert current(connection, changed) == revision
    assert differences(engine, declared_tables(KIT_METADATA, declared)) == []
    assert [row["note"] for row in all_rows(engine)["orders"]] == [None, None]
