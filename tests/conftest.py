"""Fixtures shared by every test folder: outside inputs and databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

STRICT = os.environ.get("SHOP_STRICT") == "1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def require(condition: bool, reason: str) -> None:
    """Skip when an outside input is missing on a user's machine; fail under CI (SHOP_STRICT=1)."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"SHOP_STRICT=1 and {reason}")
    pytest.skip(reason)


def shared_path(*parts: str) -> Path:
    """A path inside the shared test inputs (`SHOP_SHARED_DIR`, e.g. ../shared)."""
    root = os.environ.get("SHOP_SHARED_DIR")
    require(root is not None, "SHOP_SHARED_DIR is not set (point it at the shared test inputs)")
    path = Path(str(root)).joinpath(*parts)
    require(path.exists(), f"{path} does not exist")
    return path


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return shared_path("conformance")


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    return shared_path("schemas")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("SHOP_TEST_POSTGRES_URL")
    require(url is not None, "SHOP_TEST_POSTGRES_URL is not set (a PostgreSQL server for tests)")
    return str(url)


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
