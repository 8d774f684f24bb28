"""A kit-built service under gunicorn, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServedApp

KIT_APP = "tests.support.kit_app:create_app()"


def serve_kit_app(directory: Path, **env: str) -> ServedApp:
    env.setdefault("DATABASE_URL", f"sqlite:///{directory}/kittest.db")
    env.setdefault("OUTBOX_POLL_SECONDS", "0.2")
    return ServedApp(KIT_APP, directory / "gunicorn.log", env=env, cwd=directory).start()


@pytest.fixture(scope="module")
def kit_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One shared kit service (SQLite) for tests that only read answers."""
    app = serve_kit_app(tmp_path_factory.mktemp("kit"))
    yield app.url
    app.stop()
