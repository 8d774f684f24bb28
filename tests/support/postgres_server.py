"""A throwaway PostgreSQL server for one test session, when SHOP_TEST_POSTGRES_URL names none.

pytest-postgresql's executor runs it: `initdb` into a temporary folder (trust auth, superuser
`postgres`), then `pg_ctl start` on a free port of 127.0.0.1 with its unix socket in that folder;
`pg_ctl stop` and the folder's removal end it. initdb refuses to run as root, so under root the
server runs as the `postgres` user (`runuser`), the account Debian's postgresql package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_postgresql.executors import PostgreSQLExecutor

from tests.support.processes import free_port

# Debian and Ubuntu keep the server binaries off PATH, one folder per major version.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"


def find_pg_ctl() -> Path | None:
    """pg_ctl (initdb beside it) from PATH, else the newest /usr/lib/postgresql/<ver>/bin."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path)] if on_path else []
    debian = [p for p in DEBIAN_BINARIES.glob("*/bin/pg_ctl") if p.parts[-3].isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parts[-3]), reverse=True)
    return next((c for c in candidates if (c.parent / "initdb").is_file()), None)


def unavailable_reason() -> str | None:
    """Why no throwaway server can be started here, or None when one can."""
    if find_pg_ctl() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed"
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        return "PostgreSQL's initdb cannot run as root, and runuser is missing"
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return f"PostgreSQL's initdb cannot run as root, and there is no `{SERVER_USER}` user"
    return None


@dataclass(frozen=True)
class PrivateServer:
    """A running throwaway server: its URL, and a way to take it down and bring it back with
    its data (`pg_ctl stop -m fast` / `pg_ctl start -w`), for tests of a database outage."""

    url: str
    pg_ctl: str
    datadir: Path
    logfile: Path
    port: int

    def down(self) -> None:
        subprocess.run(
            [self.pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def up(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir.parent}"
        subprocess.run(
            [
                self.pg_ctl,
                "start",
                "-D",
                str(self.datadir),
                "-w",
                "-o",
                options,
                "-l",
                str(self.logfile),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Starts a private PostgreSQL server; yields its SQLAlchemy URL; stops and removes it after."""
    with private_server() as server:
        yield server.url


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """Starts a private PostgreSQL server; yields it; stops and removes it after."""
    pg_ctl = find_pg_ctl()
    assert pg_ctl is not None, unavailable_reason()
    # Not under pytest's basetemp: that is private to the user, and under root the server's
    # user must own this folder.
    folder = Path(tempfile.mkdtemp(prefix="shop-postgres-"))
    try:
        executable = str(pg_ctl)
        if os.geteuid() == 0:
            executable = run_as_server_user(pg_ctl, folder)
        port = free_port()
        executor = PostgreSQLExecutor(
            executable=executable,
            host="127.0.0.1",
            port=port,
            datadir=str(folder / "data"),
            unixsocketdir=str(folder),
            logfile=str(folder / "postgresql.log"),
            startparams="-w",
            dbname="postgres",
            user="postgres",
            postgres_options="-c listen_addresses=127.0.0.1",
        )
        try:
            executor.start()
        except Exception as error:
            raise RuntimeError(
                f"the throwaway PostgreSQL did not start:\n{log_tail(folder)}"
            ) from error
        server = PrivateServer(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
            executable,
            folder / "data",
            folder / "postgresql.log",
            port,
        )
        try:
            yield server
        finally:
            subprocess.run(
                [executable, "stop", "-D", str(server.datadir), "-m", "immediate"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            with contextlib.suppress(Exception):
                executor.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_as_server_user(pg_ctl: Path, folder: Path) -> str:
    """A pg_ctl in `folder` that runs the real one as the `postgres` user; `folder` is theirs."""
    account = pwd.getpwnam(SERVER_USER)
    os.chown(folder, account.pw_uid, account.pw_gid)
    wrapper = folder / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\nexec runuser -u {SERVER_USER} -- "{pg_ctl}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def log_tail(folder: Path, lines: int = 20) -> str:
    log = folder / "postgresql.log"
    if not log.is_file():
        return "(no server log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
