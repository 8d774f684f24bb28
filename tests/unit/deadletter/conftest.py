"""Fixtures of the deadletter service's tests: its real app on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask

from kit import KitConfig
from services.deadletter.app import DeadletterConfig, create_app
from services.deadletter.redelivery import DEFAULT_MODE, Mode
from tests.support.recording_sink import RecordingSink


def build_app(
    database_url: str,
    broker_url: str | None,
    token_file: str | None = None,
    default_mode: Mode = DEFAULT_MODE,
) -> Flask:
    kit = KitConfig(
        service="deadletter",
        database_url=database_url,
        source="/shop/deadletter",
        sink=broker_url,
        relay_enabled=False,
        log_level="WARNING",
    )
    if token_file is not None:
        kit = replace(kit, sender_token_file=token_file)
    return create_app(
        DeadletterConfig(kit, redelivery_timeout_seconds=5.0, default_mode=default_mode)
    )


@pytest.fixture
def app(database_url: str, broker: RecordingSink) -> Iterator[Flask]:
    """The deadletter service, redelivering to `broker`."""
    application = build_app(database_url, broker.url)
    yield application
    application.extensions["shop.kit"].close()
