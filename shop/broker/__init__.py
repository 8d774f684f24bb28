"""The local durable broker of `shop up`: Knative's MT broker semantics on asyncio and SQLite (WAL).

    shop broker --manifests manifests --port 8080 --state-dir .shop [--endpoints FILE]

See docs/broker.md for the HTTP endpoints, the journal and the durability guarantees. The
package imports nothing eagerly: every `shop` command loads this package's configuration, and
only `shop broker` needs the server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shop.broker.config import BrokerConfig
    from shop.broker.journal import Journal
    from shop.broker.server import StartupError, load_routes, run, serve

__all__ = ["BrokerConfig", "Journal", "StartupError", "load_routes", "run", "serve"]

_HOMES = {
    "BrokerConfig": "shop.broker.config",
    "Journal": "shop.broker.journal",
    "StartupError": "shop.broker.server",
    "load_routes": "shop.broker.server",
    "run": "shop.broker.server",
    "serve": "shop.broker.server",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'shop.broker' has no attribute {name!r}")
