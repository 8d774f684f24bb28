"""The CloudEvents service toolkit: what every service in this project is built from.

handlers = HandlerSet()

@handlers.on("order.created")
def reserve(event: CloudEvent, tx: Transaction) -> NewEvent | None: ...

service = create_service("inventory", handlers, metadata=store.metadata)
app = service.app            # served by gunicorn: "services.inventory.app:create_app()"
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import sqlalchemy as sa

    from services.kit.config import KitConfig
    from services.kit.errors import RequestError, RetryLater
    from services.kit.outgoing import NewEvent
    from services.kit.schemas import SchemaRegistry
    from services.kit.service import (
        HandlerSet,
        ResourceKey,
        Service,
        Transaction,
        current_service,
    )

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

# Imported on first use: the broker and the CLI use the kit's wire format (spec, http_binding,
# logs) and should not pay for Flask and SQLAlchemy at start-up.
_HOMES = {
    "KitConfig": "services.kit.config",
    "RequestError": "services.kit.errors",
    "RetryLater": "services.kit.errors",
    "NewEvent": "services.kit.outgoing",
    "SchemaRegistry": "services.kit.schemas",
    "HandlerSet": "services.kit.service",
    "ResourceKey": "services.kit.service",
    "Service": "services.kit.service",
    "Transaction": "services.kit.service",
    "current_service": "services.kit.service",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'services.kit' has no attribute {name!r}")


def create_service(
    name: str,
    handlers: HandlerSet,
    *,
    config: KitConfig | None = None,
    schemas: SchemaRegistry | None = None,
    metadata: sa.MetaData | None = None,
    stateless: bool = False,
    resources: Mapping[ResourceKey[Any], object] | None = None,
) -> Service:
    """A service named `name` with its handlers; configuration from the environment by default."""
    from services.kit import config as kit_config
    from services.kit import service as kit_service
    from services.kit.schemas import EMPTY_REGISTRY

    return kit_service.Service(
        config or kit_config.KitConfig.from_env(name),
        handlers,
        schemas=schemas if schemas is not None else EMPTY_REGISTRY,
        metadata=metadata,
        stateless=stateless,
        resources=resources,
    )
