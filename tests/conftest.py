"""Fixtures shared by every test folder: outside inputs and databases, and the skip summary."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

STRICT = os.environ.get("SHOP_STRICT") == "1"
REPO_ROOT = Path(__file__).resolve().parent.parent

SHARED_DIR_REMEDY = "`SHOP_SHARED_DIR=<path to them> make test`"
POSTGRES_REMEDY = "`apt-get install postgresql` (or set SHOP_TEST_POSTGRES_URL)"
# The command that brings in the skips whose reasons do not name one (tests/e2e, tests/image, ...):
# (a phrase of the reason, the command), the first match wins.
REMEDIES = (
    (
        "SHOP_E2E_CONTEXT",
        "`SHOP_E2E_CONTEXT=kind-shop make test` once `make kind-up && skaffold run`",
    ),
    ("manifests/ is not rendered", "`make manifests`"),
    ("checkov is not installed", "`make tools`"),
    ("needs root", "run the tests as root"),
    ("podman is not installed", "`apt-get install -y podman buildah runc debootstrap`"),
    ("debootstrap is not installed", "`apt-get install -y podman buildah runc debootstrap`"),
    ("openssl", "`apt-get install -y openssl`"),
)


def require(condition: bool, reason: str) -> None:
    """Skip when an outside input is missing on a user's machine; fail under CI (SHOP_STRICT=1).

    The reason says what is missing, then ` -> ` and the one command that brings it in.
    """
    if condition:
        return
    if STRICT:
        pytest.fail(f"SHOP_STRICT=1 and {reason}")
    pytest.skip(reason)


def shared_path(*parts: str) -> Path:
    """A path inside the shared test inputs (`SHOP_SHARED_DIR`, e.g. ../shared)."""
    root = os.environ.get("SHOP_SHARED_DIR")
    require(
        root is not None,
        (
            "SHOP_SHARED_DIR is not set (the shared schemas and conformance suites; CI sets it)"
            f" -> {SHARED_DIR_REMEDY}"
        ),
    )
    path = Path(str(root)).joinpath(*parts)
    require(path.exists(), f"{path} does not exist -> {SHARED_DIR_REMEDY}")
    return path


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return shared_path("conformance")


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    return shared_path("schemas")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server: $SHOP_TEST_POSTGRES_URL, else a throwaway one for this session."""
    url = os.environ.get("SHOP_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.support.postgres_server import throwaway_server, unavailable_reason

    missing = unavailable_reason()
    require(missing is None, f"{missing} -> {POSTGRES_REMEDY}")
    with throwaway_server() as throwaway:
        yield throwaway


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL database (the test runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgres_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """After pytest's own summary: the skipped tests by reason, each with what brings them in."""
    yield
    reasons = Counter(skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if not reasons:
        return
    terminalreporter.section("skipped tests, and how to bring them in", sep="-")
    for reason, count in reasons.most_common():
        terminalreporter.line(f"{count} skipped: {with_remedy(reason)}")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason given to pytest.skip or skipif, without pytest's location and prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def with_remedy(reason: str) -> str:
    if " -> " in reason:
        return reason
    remedy = next((r for phrase, r in REMEDIES if phrase in reason), None)
    return reason if remedy is None else f"{reason} -> {remedy}"
