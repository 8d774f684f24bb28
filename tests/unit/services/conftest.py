"""Fixtures of the service tests: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A fresh, empty database per name asked for (one per service), SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path}/{name}.db"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create(name: str) -> str:
        database = f"shop_test_{name}_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        created.append(database)
        url = sa.make_url(postgres_url).set(database=database)
        return url.render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.connect() as connection:
            for database in created:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(database_urls: Callable[[str], str]) -> str:
    """One fresh database (SQLite file or PostgreSQL database) for the service under test."""
    return database_urls("service")
