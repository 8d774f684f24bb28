"""Fixtures for broker tests: scripted subscribers and real broker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.broker_classes import CLASSES, IDS, BrokerClass
from tests.support.broker_process import BrokerProcess
from tests.support.oidc import (  # the sender identity tests' issuer
    RunningIssuer,
    oidc_issuer,  # noqa: F401
)
from tests.support.scripted_subscriber import Script, ScriptedSubscriber

StartBroker = Callable[..., BrokerProcess]
StartIdentityBroker = Callable[..., BrokerProcess]
NewSubscriber = Callable[..., ScriptedSubscriber]


@pytest.fixture(scope="module", params=CLASSES, ids=[IDS[c] for c in CLASSES])
def broker_class_name(request: pytest.FixtureRequest) -> str:
    """The broker class a parametrised test runs on (module-scoped, for module brokers)."""
    name: str = request.param
    return name


@pytest.fixture
def broker_class(broker_class_name: str) -> Iterator[BrokerClass]:
    """The class under test, building this test's manifests; its RabbitMQ objects are deleted
    afterwards (after `start_broker` stopped the brokers: fixtures end in reverse order)."""
    chosen = BrokerClass.of(broker_class_name)
    yield chosen
    chosen.delete_objects()


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
def start_broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartBroker]:
    """Start `shop broker` processes on the given manifests and endpoints; stopped afterwards."""
    for owner in ("broker_class", "namespace"):
        if owner in request.fixturenames:
            # Set up first so that it ends last: RabbitMQ objects are deleted once no broker runs.
            request.getfixturevalue(owner)
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


@pytest.fixture
def start_identity_broker(
    start_broker: StartBroker,
    oidc_issuer: RunningIssuer,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> StartIdentityBroker:
    """Start a broker whose sender identity is the test's issuer (its key in a PEM file)."""
    key_file = tmp_path / "issuer-key.pem"
    key_file.write_bytes(
        oidc_issuer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    def start(
        manifests: Iterable[Mapping[str, Any]],
        endpoints: Mapping[str, str] | None = None,
        *args: str,
    ) -> BrokerProcess:
        arguments = ("--oidc-issuer", oidc_issuer.url, "--oidc-key", str(key_file), *args)
        return start_broker(manifests, endpoints, *arguments)

    return start
