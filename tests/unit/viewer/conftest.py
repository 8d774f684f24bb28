"""Fixtures of the viewer's tests: its real app, a stand-in broker, a real deadletter service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from kit import KitConfig
from services.deadletter.app import DeadletterConfig
from services.deadletter.app import create_app as create_deadletter
from services.viewer.app import ViewerConfig, create_app
from tests.support.recording_sink import RecordingSink


def viewer_config(**overrides: object) -> ViewerConfig:
    kit = KitConfig(
        service="viewer",
        database_url="sqlite://",
        source="/shop/viewer",
        sink=overrides.pop("broker_url", None),  # type: ignore[arg-type]
        relay_enabled=False,
        log_level="WARNING",
    )
    settings: dict[str, object] = {"stream_seconds": 2.0, "heartbeat_seconds": 0.2}
    settings.update(overrides)
    return ViewerConfig(kit, **settings)  # type: ignore[arg-type]


@pytest.fixture
def viewer(broker: RecordingSink) -> Flask:
    """The viewer with a history of 5 events, sending to `broker`."""
    return create_app(viewer_config(history=5, broker_url=broker.url))


class ServedFlask:
    """A Flask app on a real HTTP server in a thread (werkzeug's, threaded)."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ServedFlask:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()


@pytest.fixture
def deadletter_service(tmp_path: Path, broker: RecordingSink) -> Iterator[str]:
    """A real deadletter service (SQLite) on a real port; its URL."""
    kit = KitConfig(
        service="deadletter",
        database_url=f"sqlite:///{tmp_path}/deadletter.db",
        source="/shop/deadletter",
        sink=broker.url,
        relay_enabled=False,
        log_level="WARNING",
    )
    app = create_deadletter(DeadletterConfig(kit))
    with ServedFlask(app) as served:
        yield served.url
    app.extensions["shop.kit"].close()
