"""Fixtures for broker tests: scripted subscribers and real broker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker_process import BrokerProcess
from tests.support.oidc import oidc_issuer  # noqa: F401  (the sender identity tests' issuer)
from tests.support.scripted_subscriber import Script, ScriptedSubscriber

StartBroker = Callable[..., BrokerProcess]
NewSubscriber = Callable[..., ScriptedSubscriber]


@pytest.fixture
def subscriber_factory() -> Iterator[NewSubscriber]:
    """Make scripted subscribers; all are closed after the test."""
    made: list[ScriptedSubscriber] = []

    def make(script: Script | None = None) -> ScriptedSubscriber:
        subscriber = ScriptedSubscriber(script)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[StartBroker]:
    """Start `shop broker` processes on the given manifests and endpoints; stopped afterwards."""
    started: list[BrokerProcess] = []

    def start(
        manifests: Iterable[Mapping[str, Any]],
        endpoints: Mapping[str, str] | None = None,
        *args: str,
    ) -> BrokerProcess:
        directory = tmp_path / f"broker-{len(started)}"
        broker = BrokerProcess(directory, manifests, endpoints or {}, *args)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()
