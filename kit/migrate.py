"""`python -m kit.migrate`: a service database's schema, for operators and developers.

    python -m kit.migrate upgrade --service order     # the kit's, then the order service's, to head
    python -m kit.migrate current --service order     # the revision each history is at
    python -m kit.migrate history --service order     # every revision of both histories
    python -m kit.migrate revision --service order -m "orders.note"   # a new revision to edit
    python -m kit.migrate revision --kit -m "..."     # ... of the kit's own tables

upgrade and current read the service's DATABASE_URL (as the service does). revision needs no
database: it writes the next revision of the history, with the operations that bring a scratch
SQLite database at head to the tables the code declares (Alembic's autogenerate), for you to
read and complete (CHECK constraints and data changes are not seen by autogenerate).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from kit.config import KitConfig
from kit.database import create_engine
from kit.migrations import KIT_HISTORY
from kit.migrations.runner import History, MigrationError, current, upgrade


def service_history(name: str) -> History:
    """The history of the service `name`: HISTORY in services/<name>/migrations."""
    try:
        module = importlib.import_module(f"services.{name}.migrations")
    except ModuleNotFoundError as error:
        raise MigrationError(
            f"services.{name}.migrations cannot be imported ({error}): is {name!r} a service"
            " that keeps a database?"
        ) from None
    history = getattr(module, "HISTORY", None)
    if not isinstance(history, History):
        raise MigrationError(f"services.{name}.migrations has no HISTORY")
    return history


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except MigrationError as error:
        print(f"kit.migrate {args.command}: {error}", file=sys.stderr)
        return 1


def _histories(args: argparse.Namespace) -> list[History]:
    return [KIT_HISTORY, service_history(args.service)]


def _database_url(args: argparse.Namespace) -> str:
    return KitConfig.from_env(args.service).database_url


def _upgrade(args: argparse.Namespace) -> int:
    engine = create_engine(_database_url(args))
    try:
        for step in upgrade(engine, _histories(args)):
            origin = "create_all's tables" if step.stamped else step.before or "nothing"
            print(f"{step.history}: {origin} -> {step.after}")
    finally:
        engine.dispose()
    return 0


def _current(args: argparse.Namespace) -> int:
    engine = create_engine(_database_url(args))
    behind = 0
    try:
        with engine.connect() as connection:
            for history in _histories(args):
                found, head = current(connection, history), history.head()
                behind += found != head
                state = "head" if found == head else f"behind: head is {head}"
                print(f"{history.name}: {found or 'nothing'} ({state})")
    finally:
        engine.dispose()
    return 0 if behind == 0 else 2


def _history(args: argparse.Namespace) -> int:
    for history in _histories(args):
        print(f"{history.name} ({history.version_table}, {history.versions}):")
        for script in reversed(list(history.script().walk_revisions())):
            head = " (head)" if script.is_head else ""
            print(f"  {script.revision}{head}: {script.doc}")
    return 0


def _revision(args: argparse.Namespace) -> int:
    print(write_revision(KIT_HISTORY if args.kit else service_history(args.service), args.message))
    return 0


def write_revision(history: History, message: str) -> Path:
    """Write the history's next revision: the operations that make a database at head have the
    tables `history.metadata` declares (autogenerate, rendered in batch form for SQLite)."""
    head = history.head()
    with tempfile.TemporaryDirectory(prefix="kit-migrate-") as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            upgrade(engine, [history])
            with engine.connect() as connection:
                context = MigrationContext.configure(
                    connection,
                    opts={
                        "version_table": history.version_table,
                        "target_metadata": history.metadata,
                    },
                )
                operations = produce_migrations(context, history.metadata).upgrade_ops
                assert operations is not None
                code = render_python_code(operations, render_as_batch=True)
        finally:
            engine.dispose()
    written = history.script().generate_revision(
        f"{int(head) + 1:04d}",
        message,
        head=head,
        version_path=history.versions,
        upgrades=None if operations.is_empty() else code,
    )
    assert written is not None
    return Path(written.path)


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m kit.migrate", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, text in (
        ("upgrade", _upgrade, "bring the kit's and the service's tables to head"),
        ("current", _current, "the revision of each history (exit 2 when one is behind)"),
        ("history", _history, "every revision of the kit's and the service's histories"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--service", required=True, help="e.g. order (reads DATABASE_URL)")
        command.set_defaults(run=run)
    revision = commands.add_parser("revision", help="write the next revision of a history")
    which = revision.add_mutually_exclusive_group(required=True)
    which.add_argument("--service", help="the service whose history gets the revision")
    which.add_argument("--kit", action="store_true", help="the kit's history gets it")
    revision.add_argument("-m", "--message", required=True, help="what the revision changes")
    revision.set_defaults(run=_revision)
    return parser


if __name__ == "__main__":
    sys.exit(main())
