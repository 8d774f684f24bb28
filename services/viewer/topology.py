"""The topology document: which Trigger sends which events to which subscriber.

The viewer reads it from `TOPOLOGY` (JSON the chart renders from its values) or fetches it from
`TOPOLOGY_URL` (the local broker's `/_shop/topology`); `shop topology` builds the same document
from a manifest folder. The shape:

    {
      "brokers":  [{"namespace": "shop", "name": "default", "deadLetterSink": "deadletter"}],
      "triggers": [{"namespace": "shop", "name": "inventory-order-created", "broker": "default",
                    "subscriber": "inventory",
                    "filters": [{"exact": {"type": "order.created"}}],
                    "deadLetterSink": "deadletter"}]
    }

`subscriber` and `deadLetterSink` are a Knative Service's name, a URL, or a Destination object
(`{"ref": {"name": ...}, "uri": ...}`); `filter` (`{"attributes": {...}}`) and `filters` are the
Trigger's own fields; `namespace` and `broker` may be left out (`shop`, `default`), and so may
every optional field. The local broker's `dead_letter_sink` spelling is accepted too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wire.knative.filters.description import describe_filter

DEFAULT_NAMESPACE = "shop"
DEFAULT_BROKER = "default"


class TopologyError(ValueError):
    """A topology document that does not have the shape above; says where."""


@dataclass(frozen=True)
class BrokerNode:
    """A Broker and the dead-letter sink its triggers fall back to."""

    namespace: str
    name: str
    dead_letter_sink: str | None = None


@dataclass(frozen=True)
class Route:
    """One Trigger: its filter in words, its subscriber and its dead-letter sink."""

    namespace: str
    name: str
    broker: str
    subscriber: str
    filter: str
    dead_letter_sink: str | None = None


@dataclass(frozen=True)
class TopologyView:
    """Brokers and triggers, in the document's order."""

    brokers: tuple[BrokerNode, ...]
    triggers: tuple[Route, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "brokers": [
                {
                    "namespace": broker.namespace,
                    "name": broker.name,
                    "deadLetterSink": broker.dead_letter_sink,
                }
                for broker in self.brokers
            ],
            "triggers": [
                {
                    "namespace": route.namespace,
                    "name": route.name,
                    "broker": route.broker,
                    "subscriber": route.subscriber,
                    "filter": route.filter,
                    "deadLetterSink": route.dead_letter_sink,
                }
                for route in self.triggers
            ],
        }


def parse_topology(document: Any) -> TopologyView:
    """Read a topology document (the shape in this module's docstring)."""
    if not isinstance(document, Mapping):
        raise TopologyError("the topology must be a JSON object with 'brokers' and 'triggers'")
    brokers = tuple(
        _broker(item, f"brokers[{index}]") for index, item in enumerate(_list(document, "brokers"))
    )
    triggers = tuple(
        _route(item, f"triggers[{index}]") for index, item in enumerate(_list(document, "triggers"))
    )
    if not brokers:
        # A document of triggers alone implies the brokers they name.
        names = dict.fromkeys((route.namespace, route.broker) for route in triggers)
        brokers = tuple(BrokerNode(namespace, name) for namespace, name in names)
    return TopologyView(brokers, triggers)


def parse_topology_text(text: str) -> TopologyView:
    """A topology document from JSON text (the TOPOLOGY variable)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise TopologyError(f"not JSON: {error}") from None
    return parse_topology(document)


def destination_name(value: Any) -> str | None:
    """What to call a subscriber or sink: a ksvc's name, else its URL."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _short_url(value)
    if isinstance(value, Mapping):
        ref = value.get("ref")
        uri = value.get("uri")
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            name = str(ref["name"])
            return f"{name}{uri}" if isinstance(uri, str) and uri.startswith("/") else name
        if isinstance(uri, str):
            return _short_url(uri)
    raise TopologyError(f"expected a name, a URL or a Destination, not {value!r}")


def _short_url(url: str) -> str:
    """`http://inventory.shop.svc.cluster.local` -> `inventory`; other URLs stay as they are."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".svc.cluster.local") and parts.path in ("", "/"):
        return host.split(".", 1)[0]
    return url


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise TopologyError(f"{key}: expected a list")
    return value


def _text(item: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or not value:
        raise TopologyError(f"{where}.{key}: expected a non-empty string")
    return value


def _broker(item: Any, where: str) -> BrokerNode:
    if not isinstance(item, Mapping):
        raise TopologyError(f"{where}: expected an object")
    return BrokerNode(
        namespace=_text(item, "namespace", where, DEFAULT_NAMESPACE),
        name=_text(item, "name", where),
        dead_letter_sink=_sink(item, where),
    )


def _route(item: Any, where: str) -> Route:
    if not isinstance(item, Mapping):
        raise TopologyError(f"{where}: expected an object")
    try:
        subscriber = destination_name(item.get("subscriber"))
    except TopologyError as error:
        raise TopologyError(f"{where}.subscriber: {error}") from None
    if subscriber is None:
        raise TopologyError(f"{where}.subscriber: required")
    return Route(
        namespace=_text(item, "namespace", where, DEFAULT_NAMESPACE),
        name=_text(item, "name", where),
        broker=_text(item, "broker", where, DEFAULT_BROKER),
        subscriber=subscriber,
        filter=describe_filter(item),
        dead_letter_sink=_sink(item, where),
    )


def _sink(item: Mapping[str, Any], where: str) -> str | None:
    value = item.get("deadLetterSink", item.get("dead_letter_sink"))
    try:
        return destination_name(value)
    except TopologyError as error:
        raise TopologyError(f"{where}.deadLetterSink: {error}") from None
