"""Where the running `shop up` is: `<state-dir>/run/endpoints.json`, read as the broker reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shop.broker.routes import RouteError, load_endpoints


class NotRunning(Exception):
    """No `shop up` to talk to, and no URL given instead; the message says what to do."""


@dataclass(frozen=True)
class LocalShop:
    """The URLs of one `shop up` run."""

    endpoints: dict[str, str]
    source: Path

    def url(self, service: str, *, option: str) -> str:
        """A service's base URL; `option` names the flag that would give it instead."""
        found = self.endpoints.get(service)
        if not found:
            raise NotRunning(
                f"{self.source} has no {service!r} endpoint: does the topology run a "
                f"{service} service? (or pass {option} URL)"
            )
        return found.rstrip("/")

    @property
    def broker_ingress(self) -> str:
        """The first Broker's ingress, e.g. http://127.0.0.1:8080/shop/default."""
        return self.url("broker", option="--to")

    @property
    def broker_admin(self) -> str:
        """The local broker's own base URL (its /_shop/ API and /metrics)."""
        return origin(self.broker_ingress)


def local_shop(state_dir: Path, *, option: str) -> LocalShop:
    """The endpoints of the `shop up` whose state dir is `state_dir`."""
    path = state_dir / "run" / "endpoints.json"
    try:
        endpoints = load_endpoints(path)
    except RouteError as error:
        raise NotRunning(str(error)) from None
    if not endpoints:
        raise NotRunning(
            f"no {path}: start the shop with `shop up` (or pass {option} URL, or --state-dir "
            "for a shop started elsewhere)"
        )
    return LocalShop(endpoints, path)


def origin(url: str) -> str:
    """`scheme://host:port` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
