"""The CloudEvents service toolkit: what every service in this project is built from.

handlers = HandlerSet()

@handlers.on("order.created")
def reserve(event: CloudEvent, tx: Transaction) -> NewEvent | None: ...

service = create_service("inventory", handlers, migrations=HISTORY)  # services/inventory/migrations
app = service.app            # served by gunicorn: "services.inventory.app:create_app()"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from kit.config import KitConfig
from kit.errors import RequestError, RetryLater
from kit.migrations.runner import History
from kit.outgoing import NewEvent
from kit.schemas import EMPTY_REGISTRY, SchemaRegistry
from kit.service import HandlerSet, ResourceKey, Service, Transaction, current_service

__all__ = [
    "HandlerSet",
    "KitConfig",
    "NewEvent",
    "RequestError",
    "ResourceKey",
    "RetryLater",
    "SchemaRegistry",
    "Service",
    "Transaction",
    "create_service",
    "current_service",
]


def create_service(
    name: str,
    handlers: HandlerSet,
    *,
    config: KitConfig | None = None,
    schemas: SchemaRegistry | None = None,
    metadata: sa.MetaData | None = None,
    migrations: History | None = None,
    stateless: bool = False,
    resources: Mapping[ResourceKey[Any], object] | None = None,
    partition_by_subject: bool = False,
) -> Service:
    """A service named `name` with its handlers; configuration from the environment by default.

    `partition_by_subject`: every event it sends carries its subject as `partitionkey` too (the
    saga's services: the order id, which keeps an order's events in order on a Kafka broker).
    """
    return Service(
        config or KitConfig.from_env(name),
        handlers,
        schemas=schemas if schemas is not None else EMPTY_REGISTRY,
        metadata=metadata,
        migrations=migrations,
        stateless=stateless,
        resources=resources,
        partition_by_subject=partition_by_subject,
    )
