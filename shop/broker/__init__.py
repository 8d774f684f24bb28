"""The local durable broker of `shop up`: Knative's MT broker semantics on aiohttp and SQLite (WAL).

    shop broker --manifests manifests --port 8080 --state-dir .shop [--endpoints FILE]

See docs/broker.md for the HTTP endpoints, the journal and the durability guarantees.
"""

from shop.broker.config import BrokerConfig
from shop.broker.journal import Journal
from shop.broker.server import StartupError, load_routes, run, serve

__all__ = ["BrokerConfig", "Journal", "StartupError", "load_routes", "run", "serve"]
