"""The broker classes the broker tests run against, and the manifests of one test's objects.

A test parametrised over the class builds its Broker, Triggers and Services here: the Broker
gets the class annotation, and every object the test's namespace. The SQLite classes keep the
namespace `shop`; a RabbitMQBroker gets one of its own per test (its exchanges and queues are
named after the namespace, so no two tests, and no benchmark on `shop/default`, share them),
and its RabbitMQ objects are deleted afterwards (`tests/support/rabbitmq.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.broker_process import (
    CLASS_ANNOTATION,
    broker_manifest,
    service_manifest,
    trigger_manifest,
)
from tests.support.rabbitmq import delete_broker, require_rabbitmq

SQLITE = "MTChannelBasedBroker"
RABBITMQ = "RabbitMQBroker"
CLASSES = (SQLITE, RABBITMQ)
IDS = {SQLITE: "sqlite", RABBITMQ: "rabbitmq"}


@dataclass
class BrokerClass:
    """One broker class under test, with the namespace this test's objects live in."""

    name: str
    namespace: str
    _brokers: set[str] = field(default_factory=set)
    _triggers: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, name: str) -> BrokerClass:
        """The class `name`; for RabbitMQ (which must answer) a fresh namespace."""
        if name == RABBITMQ:
            require_rabbitmq()
            return cls(name, f"rmq-{uuid.uuid4().hex[:8]}")
        return cls(name, "shop")

    @property
    def rabbitmq(self) -> bool:
        return self.name == RABBITMQ

    def broker(self, name: str = "default", **spec: Any) -> dict[str, Any]:
        """A Broker of this class in the test's namespace (`broker_manifest`'s arguments)."""
        self._brokers.add(name)
        manifest = broker_manifest(name, self.namespace, **spec)
        manifest["metadata"]["annotations"] = {CLASS_ANNOTATION: self.name}
        return manifest

    def trigger(
        self,
        name: str,
        subscriber: str | Mapping[str, Any],
        broker: str = "default",
        **spec: Any,
    ) -> dict[str, Any]:
        """A Trigger in the test's namespace (`trigger_manifest`'s arguments)."""
        self._triggers.add(name)
        return trigger_manifest(name, subscriber, broker, self.namespace, **spec)

    def service(self, name: str, **pod: Any) -> dict[str, Any]:
        """A Knative Service in the test's namespace."""
        return service_manifest(name, self.namespace, **pod)

    def key(self, name: str) -> str:
        """`namespace/name` of an object of the test, as the journal and metrics name it."""
        return f"{self.namespace}/{name}"

    def delete_objects(self) -> None:
        """Delete the exchanges and queues of what was built here (RabbitMQ only)."""
        if self.rabbitmq:
            for broker in sorted(self._brokers):
                delete_broker(self.namespace, broker, sorted(self._triggers))
