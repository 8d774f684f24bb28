"""The system the fuzz tests attack: `shop up` of the checked-in manifests, minus the Triggers.

Every process is the real one, configured as the chart configures it (the same Broker, Knative
Services, SinkBindings and environment). The Triggers are left out so that each target is
attacked alone: an event the broker accepts is stored and goes nowhere, instead of arriving at
the viewer (the kit sink under attack on its own) and, for saga types, at the services whose
JSON APIs are under attack. `shop up` still starts every Knative Service the manifests define.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.support.shop_up import REPO_ROOT, ShopUp


def manifests_without_triggers(directory: Path) -> Path:
    """Copy manifests/ into `directory` with every Trigger removed; the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO_ROOT / "manifests").glob("*.yaml")):
        documents = [
            document
            for document in yaml.safe_load_all(source.read_text())
            if document and document.get("kind") != "Trigger"
        ]
        (directory / source.name).write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return directory


@dataclass(frozen=True)
class Endpoint:
    """Where a target listens and which process serves it."""

    name: str
    host: str
    port: int
    pid: int

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def endpoint(shop: ShopUp, name: str) -> Endpoint:
    """A process of the running shop: its address (from endpoints.json) and pid."""
    url = urlsplit(shop.url(name))
    assert url.hostname is not None and url.port is not None
    return Endpoint(name, url.hostname, url.port, shop.pid_of(name))


@contextmanager
def fuzzed_shop(directory: Path) -> Iterator[ShopUp]:
    """`shop up` of the manifests without Triggers, ready; stopped (and checked clean) after."""
    manifests = manifests_without_triggers(directory / "manifests")
    with ShopUp(manifests, directory / "state") as shop:
        yield shop
