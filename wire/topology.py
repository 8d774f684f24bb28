"""The topology document: which Trigger sends which events to which subscriber.

One document, one schema (`topology.schema.json`, next to this module): the chart renders it
into the viewer's `TOPOLOGY`, `shop topology` builds it from a manifest folder, the local broker
serves it at `/_shop/topology`, and the viewer, `shop topology` and `shop status` read it here.

    {
      "brokers":  [{"namespace": "shop", "name": "default",
                    "deadLetterSink": {"ref": {"apiVersion": "serving.knative.dev/v1",
                                               "kind": "Service", "name": "deadletter"}}}],
      "triggers": [{"namespace": "shop", "name": "inventory-order-created", "broker": "default",
                    "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1",
                                           "kind": "Service", "name": "inventory"}},
                    "filters": [{"exact": {"type": "order.created"}}]}]
    }

Field names are Knative's own, camelCase: the chart writes the document in a template from the
Trigger's and Broker's own `deadLetterSink`, so one spelling needs no translation anywhere.
`subscriber` and `deadLetterSink` are Knative Destinations, as in a Trigger's spec: a `ref`, an
absolute `uri`, or a ref and a relative `uri`. The local broker, which knows where it posts,
gives the `uri`. A trigger's `deadLetterSink` is its effective one; left out, its broker's
applies. Readers call a destination by its ref (`inventory`, `audit/orders`), else by its URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from wire.knative.destination import Destination
from wire.knative.errors import FieldError
from wire.knative.filters.description import describe_filter

SCHEMA_FILE = "topology.schema.json"
_ARTICLES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


class TopologyError(ValueError):
    """A document that is not a topology document; says where and what, every problem at once."""


# -- building -------------------------------------------------------------------------------


def destination_json(destination: Destination) -> dict[str, Any]:
    """A Destination as the document (and a Trigger's spec) spells it."""
    found: dict[str, Any] = {}
    if destination.ref is not None:
        ref = destination.ref
        found["ref"] = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
        if ref.namespace is not None:
            found["ref"]["namespace"] = ref.namespace
    if destination.uri is not None:
        found["uri"] = destination.uri
    return found


def broker_json(
    namespace: str,
    name: str,
    *,
    dead_letter_sink: Destination | None = None,
    url: str | None = None,
    triggers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One entry of `brokers`; what is None is left out."""
    entry: dict[str, Any] = {"namespace": namespace, "name": name}
    if dead_letter_sink is not None:
        entry["deadLetterSink"] = destination_json(dead_letter_sink)
    if url is not None:
        entry["url"] = url
    if triggers is not None:
        entry["triggers"] = list(triggers)
    return entry


def trigger_json(
    namespace: str,
    name: str,
    broker: str,
    subscriber: Destination,
    *,
    dead_letter_sink: Destination | None = None,
    spec: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """One entry of `triggers`: `spec`'s `filter` and `filters` are copied as they are."""
    entry: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "broker": broker,
        "subscriber": destination_json(subscriber),
    }
    if dead_letter_sink is not None:
        entry["deadLetterSink"] = destination_json(dead_letter_sink)
    entry.update({key: spec[key] for key in ("filter", "filters") if spec and key in spec})
    if delivery is not None:
        entry["delivery"] = dict(delivery)
    if concurrency is not None:
        entry["concurrency"] = concurrency
    return entry


def topology_document(
    brokers: Iterable[Mapping[str, Any]], triggers: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The document of these entries, checked against the schema (a producer's bug fails here)."""
    document = {"brokers": list(brokers), "triggers": list(triggers)}
    check_topology(document)
    return document


# -- checking -------------------------------------------------------------------------------


@cache
def topology_schema() -> dict[str, Any]:
    """The JSON Schema of the document (draft 2020-12)."""
    schema: dict[str, Any] = json.loads(
        files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    )
    return schema


@cache
def _validator() -> Draft202012Validator:
    schema = topology_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def topology_problems(document: Any) -> list[str]:
    """Every way `document` is not a topology document, each naming its field; [] when it is."""
    problems = [
        problem
        for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
        for problem in _described(error)
    ]
    if problems or not isinstance(document, Mapping):
        return problems
    # What the schema cannot say: a uri alone must be absolute, next to a ref relative.
    for index, item in enumerate(document["triggers"]):
        for key in ("subscriber", "deadLetterSink"):
            problems += _destination_problems(item.get(key), f"triggers[{index}].{key}")
    for index, item in enumerate(document["brokers"]):
        where = f"brokers[{index}].deadLetterSink"
        problems += _destination_problems(item.get("deadLetterSink"), where)
    return problems


def check_topology(document: Any) -> Mapping[str, Any]:
    """`document` if it is a topology document; TopologyError with every problem if not."""
    problems = topology_problems(document)
    if problems:
        raise TopologyError("not a topology document: " + "; ".join(problems))
    result: Mapping[str, Any] = document
    return result


def _described(error: ValidationError) -> list[str]:
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        return [
            f"{_join(where, key)}: not a field of the topology document{_spelling(key, known)}"
            for key in error.instance
            if key not in known
        ]
    if error.validator == "required":
        # jsonschema reports each missing field on its own, its name quoted first.
        missing = [key for key in error.validator_value if error.message.startswith(repr(key))]
        return [f"{_join(where, key)}: required" for key in missing[:1] or ["(a field)"]]
    if error.validator == "minProperties":
        return [f"{where}: expected at least one of ref and uri"]
    if error.validator == "type":
        hint = (
            " (a Destination: a ref and/or a uri)"
            if "uri" in error.schema.get("properties", {})
            else ""
        )
        expected = error.validator_value
        names = [
            _ARTICLES[name] for name in ([expected] if isinstance(expected, str) else expected)
        ]
        return [f"{where}: expected {' or '.join(names)}{hint}, not {_json_type(error.instance)}"]
    return [f"{where}: {error.message}"]


def _spelling(key: str, known: Mapping[str, Any]) -> str:
    """`dead_letter_sink` -> ` (it is spelled deadLetterSink)` when that is a field here."""
    head, *rest = key.split("_")
    camel = head + "".join(part.capitalize() for part in rest)
    return f" (it is spelled {camel})" if camel != key and camel in known else ""


def _destination_problems(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    try:
        Destination.from_manifest(value, where)
    except FieldError as error:
        return [str(error)]
    return []


def _where(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the document)"


def _join(where: str, key: str) -> str:
    return key if where == "(the document)" else f"{where}.{key}"


def _json_type(value: Any) -> str:
    """The JSON type of `value`, with its article ("an object")."""
    if value is None:
        name = "null"
    elif isinstance(value, bool):
        name = "boolean"
    elif isinstance(value, Mapping):
        name = "object"
    elif isinstance(value, list):
        name = "array"
    elif isinstance(value, int):
        name = "integer"
    else:
        name = "number" if isinstance(value, float) else "string"
    return _ARTICLES[name]


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerNode:
    """A Broker and the dead-letter sink its triggers fall back to, by name."""

    namespace: str
    name: str
    dead_letter_sink: str | None = None


@dataclass(frozen=True)
class Route:
    """One Trigger: its filter in words, its subscriber and its own dead-letter sink, by name."""

    namespace: str
    name: str
    broker: str
    subscriber: str
    filter: str
    dead_letter_sink: str | None = None


@dataclass(frozen=True)
class TopologyView:
    """The document as people read it: destinations named, filters in words, in its order."""

    brokers: tuple[BrokerNode, ...]
    triggers: tuple[Route, ...]

    def to_json(self) -> dict[str, Any]:
        """The viewer's `/api/topology`: names and words, not the document (nothing to parse)."""
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
    """Read a topology document; TopologyError naming every field that breaks the schema."""
    checked = check_topology(document)
    brokers = tuple(
        BrokerNode(item["namespace"], item["name"], _sink_name(item)) for item in checked["brokers"]
    )
    triggers = tuple(
        Route(
            namespace=item["namespace"],
            name=item["name"],
            broker=item["broker"],
            subscriber=destination_name(Destination.from_manifest(item["subscriber"], "")),
            filter=describe_filter(item),
            dead_letter_sink=_sink_name(item),
        )
        for item in checked["triggers"]
    )
    return TopologyView(brokers, triggers)


def parse_topology_text(text: str) -> TopologyView:
    """A topology document from JSON text (the viewer's TOPOLOGY variable)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise TopologyError(f"not JSON: {error}") from None
    return parse_topology(document)


def destination_name(destination: Destination) -> str:
    """What to call a subscriber or sink: its ref's name (and path), else its URL."""
    if destination.ref is not None:
        uri = destination.uri or ""
        return f"{destination.ref.name}{uri}" if uri.startswith("/") else destination.ref.name
    assert destination.uri is not None  # a Destination has a ref or a uri
    return _short_url(destination.uri)


def _sink_name(item: Mapping[str, Any]) -> str | None:
    sink = item.get("deadLetterSink")
    return None if sink is None else destination_name(Destination.from_manifest(sink, ""))


def _short_url(url: str) -> str:
    """`http://inventory.shop.svc.cluster.local` -> `inventory`; other URLs stay as they are."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".svc.cluster.local") and parts.path in ("", "/"):
        return host.split(".", 1)[0]
    return url
