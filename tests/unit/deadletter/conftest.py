"""Fixtures of the deadletter service's tests: its real app on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from kit import KitConfig
from services.deadletter.app import DeadletterConfig, create_app
from tests.support.recording_sink import RecordingSink


def build_app(database_url: str, broker_url: str | None, token_file: str | None = None) -> Flask:
    kit = KitConfig(
        service="deadletter",
        database_url=database_url,
        source="/shop/deadletter",
        sink=broker_url,
        relay_enabled=False,
        log_level="WARNING",
        **({} if token_file is None else {"sender_token_file": token_file}),
    )
    return create_app(DeadletterConfig(kit, redelivery_timeout_seconds=5.0))


@pytest.fixture
def app(database_url: str, broker: RecordingSink) -> Iterator[Flask]:
    """The deadletter service, redelivering to `broker`."""
    application = build_app(database_url, broker.url)
    yield application
    application.extensions["shop.kit"].close()
