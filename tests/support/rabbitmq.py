"""The real RabbitMQ the RabbitMQBroker tests use (127.0.0.1:5672, guest/guest), and cleaning up
what a test's brokers declared on it."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from shop.broker.rabbitmq import topology
from tests.conftest import require

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def require_rabbitmq() -> None:
    """Skip the test unless RabbitMQ answers on 127.0.0.1:5672 (CI runs one)."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        require(False, "no RabbitMQ on 127.0.0.1:5672 -> start rabbitmq-server")


def delete_broker(namespace: str, broker: str, triggers: Iterable[str]) -> None:
    """Delete what a test's RabbitMQBroker and its `triggers` (names) declared on AMQP."""
    topology.delete_broker(AMQP, namespace, broker, triggers)
