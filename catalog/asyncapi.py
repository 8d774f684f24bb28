"""The shop's events as an AsyncAPI 3.0 document: the catalog's types on the brokers' channels.

    document = asyncapi_document(load_catalog(), topology, senders, servers=..., version="0.1.0")

Each Broker of the topology document (wire.topology) is a channel, addressed `/<namespace>/<name>`
as its ingress is, carrying every type of the catalog. Each producing service has a send
operation with the types the catalog says it produces (`x-producer`, `Catalog.produced_by`), on
the channel of the broker its SinkBinding names (`senders`). Each Trigger is a receive operation
of its subscriber with the types whose example event, as its producer sends it, passes the
Trigger's filter (the broker's own filter code); each dead-letter sink receives what the
Triggers that fall back on it receive. A message is one event type: its CloudEvents attributes
as the headers of the HTTP binding's binary mode (`ce-<attribute>`, `datacontenttype` as
Content-Type), its data schema as the payload, and one example built by the kit's own encoder.

`shop asyncapi` writes the document from a manifest folder (`make asyncapi`: catalog/asyncapi.json,
checked in, served by the viewer); this module needs neither the dev tool nor a web framework.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.asyncapi_messages import (
    CONTENT_TYPE,
    HTTP_BINDING_VERSION,
    PayloadSchemaError,
    example_event,
    headers_schema,
    message,
    payload_schema,
)
from catalog.loader import Catalog
from wire.http_binding import WireEvent
from wire.knative.destination import Destination
from wire.knative.filters import compile_trigger_filter
from wire.knative.filters.description import describe_filter
from wire.topology import check_topology, destination_name

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_FILE = Path(__file__).resolve().with_name("asyncapi.json")


class AsyncApiError(ValueError):
    """The catalog and the topology do not make a document: a producer or a Trigger is amiss."""


@dataclass(frozen=True)
class Sender:
    """A service that sends its events to a Broker (its SinkBinding's sink)."""

    service: str
    namespace: str
    broker: str


def asyncapi_document(
    catalog: Catalog,
    topology: Mapping[str, Any],
    senders: Iterable[Sender],
    *,
    version: str,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of `catalog` on the brokers and Triggers of `topology`."""
    check_topology(topology)
    brokers = [(item["namespace"], item["name"]) for item in topology["brokers"]]
    channels = _Channels(brokers)
    examples = {entry.type: example_event(catalog, entry) for entry in catalog}
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:shop:asyncapi",
        "info": _info(version),
        "defaultContentType": CONTENT_TYPE,
    }
    if servers:
        document["servers"] = {name: dict(server) for name, server in servers.items()}
    document["channels"] = {
        key: _channel(namespace, name, catalog) for key, (namespace, name) in channels.items()
    }
    document["operations"] = _operations(catalog, topology, senders, channels, examples)
    try:
        schemas = {entry.type: payload_schema(entry) for entry in catalog}
    except PayloadSchemaError as error:
        raise AsyncApiError(str(error)) from None
    document["components"] = {
        "messages": {entry.type: message(entry, examples[entry.type]) for entry in catalog},
        "schemas": {
            **{f"{entry.type}.headers": headers_schema(entry) for entry in catalog},
            **schemas,
        },
    }
    return document


def document_text(document: Mapping[str, Any]) -> str:
    """The document as the checked-in file holds it: indented JSON, a newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load_document(path: Path = DOCUMENT_FILE) -> dict[str, Any]:
    """The checked-in document (catalog/asyncapi.json)."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# -- channels and operations ----------------------------------------------------------------


class _Channels:
    """The channel key of each Broker: its name, or namespace.name when names repeat."""

    def __init__(self, brokers: Sequence[tuple[str, str]]) -> None:
        names = [name for _, name in brokers]
        self._keys = {
            (namespace, name): name if names.count(name) == 1 else f"{namespace}.{name}"
            for namespace, name in brokers
        }

    def key(self, namespace: str, name: str, who: str) -> str:
        try:
            return self._keys[(namespace, name)]
        except KeyError:
            raise AsyncApiError(
                f"{who}: Broker {namespace}/{name} is not in the topology"
            ) from None

    def items(self) -> list[tuple[str, tuple[str, str]]]:
        return [(key, broker) for broker, key in self._keys.items()]


def _operations(
    catalog: Catalog,
    topology: Mapping[str, Any],
    senders: Iterable[Sender],
    channels: _Channels,
    examples: Mapping[str, WireEvent],
) -> dict[str, Any]:
    """Each producer's send, each Trigger's receive, each dead-letter sink's receive."""
    operations: dict[str, Any] = {}
    for service, (channel, sink) in _senders(catalog, topology, senders, channels).items():
        _add(operations, f"send.{service}", _send(catalog, service, channel, sink))
    dead_letters: dict[tuple[str, str], set[str]] = {}
    for trigger in topology["triggers"]:
        channel = channels.key(trigger["namespace"], trigger["broker"], trigger["name"])
        types = _received(trigger, examples)
        _add(operations, f"receive.{trigger['name']}", _receive(trigger, channel, types, catalog))
        if "deadLetterSink" in trigger:
            target = destination_name(Destination.from_manifest(trigger["deadLetterSink"], ""))
            dead_letters.setdefault((channel, target), set()).update(types)
    for (channel, target), received in sorted(dead_letters.items()):
        _add(operations, f"dead-letters.{target}", _dead_letters(target, channel, sorted(received)))
    return operations


def _senders(
    catalog: Catalog,
    topology: Mapping[str, Any],
    senders: Iterable[Sender],
    channels: _Channels,
) -> dict[str, tuple[str, Sender | None]]:
    """Each producer of the catalog: the channel it sends on, and its sink (None: it replies).

    A service with K_SINK posts to that broker; one without answers the deliveries of its
    Triggers with its events, which the broker that delivered takes in. One with neither fails.
    """
    sinks = {sender.service: sender for sender in senders}
    found: dict[str, tuple[str, Sender | None]] = {}
    for service in sorted(set(catalog.producers().values())):
        sink = sinks.get(service)
        if sink is not None:
            found[service] = (
                channels.key(sink.namespace, sink.broker, f"the sink of {service}"),
                sink,
            )
            continue
        delivering = [
            trigger for trigger in topology["triggers"] if _subscriber(trigger) == service
        ]
        if not delivering:
            raise AsyncApiError(
                f"{service} produces {', '.join(catalog.produced_by(service))} but has no "
                "SinkBinding to a Broker and no Trigger whose deliveries it could answer"
            )
        first = delivering[0]
        found[service] = (channels.key(first["namespace"], first["broker"], first["name"]), None)
    return found


def _subscriber(trigger: Mapping[str, Any]) -> str:
    return destination_name(Destination.from_manifest(trigger["subscriber"], ""))


def _add(operations: dict[str, Any], key: str, operation: dict[str, Any]) -> None:
    if key in operations:
        raise AsyncApiError(f"two operations would be {key!r}: rename one of them")
    operations[key] = operation


def _refs(channel: str, types: Iterable[str]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in types]


def _post() -> dict[str, Any]:
    return {"http": {"method": "POST", "bindingVersion": HTTP_BINDING_VERSION}}


def _send(catalog: Catalog, service: str, channel: str, sink: Sender | None) -> dict[str, Any]:
    types = catalog.produced_by(service)
    if sink is not None:
        how = (
            f"The kit posts the events {service} originates to its sink (K_SINK, which its "
            f"SinkBinding sets to Broker {sink.namespace}/{sink.broker}) in binary mode, from "
            "its outbox, retrying as Knative does; an event a handler returns is the answer to "
            "the delivery it handled (see the reply of its receive operations)."
        )
    else:
        how = (
            f"{service} has no sink of its own: an event a handler returns is the answer to the "
            "delivery it handled (binary mode), which the broker that delivered takes in as a "
            "new event (see the reply of its receive operations)."
        )
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": f"{service} sends",
        "summary": f"{service} sends {', '.join(types)} to the broker.",
        "description": how,
        "x-service": service,
        "bindings": _post(),
        "messages": _refs(channel, types),
    }


def _received(trigger: Mapping[str, Any], examples: Mapping[str, WireEvent]) -> list[str]:
    """The catalog types whose example event passes the Trigger's filter, sorted."""
    matches = compile_trigger_filter(trigger)
    types = sorted(name for name, event in examples.items() if matches(event.attributes))
    if not types:
        raise AsyncApiError(
            f"Trigger {trigger['namespace']}/{trigger['name']} ({describe_filter(trigger)}) "
            "passes no event type of the catalog"
        )
    return types


def _receive(
    trigger: Mapping[str, Any], channel: str, types: list[str], catalog: Catalog
) -> dict[str, Any]:
    subscriber = _subscriber(trigger)
    words = describe_filter(trigger)
    operation: dict[str, Any] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": f"Trigger {trigger['name']}",
        "summary": f"{subscriber} receives {words}.",
        "description": (
            f"Trigger {trigger['namespace']}/{trigger['name']} posts the broker's events that "
            f"pass its filter ({words}) to {subscriber}, in binary mode; a 2xx answer is "
            "delivered, others are retried and then dead-lettered."
        ),
        "x-service": subscriber,
        "x-trigger": {
            key: trigger[key]
            for key in ("namespace", "name", "broker", "filter", "filters")
            if key in trigger
        },
        "bindings": _post(),
        "messages": _refs(channel, types),
    }
    replies = catalog.produced_by(subscriber)
    if replies:
        operation["reply"] = {
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": _refs(channel, replies),
        }
    return operation


def _dead_letters(sink: str, channel: str, types: list[str]) -> dict[str, Any]:
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": "dead-letter sink",
        "summary": f"{sink} receives the events no subscriber took.",
        "description": (
            f"When a Trigger's deliveries fail past its retries, the broker posts the event to "
            f"{sink} with the dead-letter extensions knativeerrordest, knativeerrorcode and "
            "knativeerrordata added."
        ),
        "x-service": sink,
        "bindings": _post(),
        "messages": _refs(channel, types),
    }


def _channel(namespace: str, name: str, catalog: Catalog) -> dict[str, Any]:
    return {
        "address": f"/{namespace}/{name}",
        "title": f"Broker {namespace}/{name}",
        "summary": "The Knative Broker every shop event passes through.",
        "description": (
            "Producers post events to the broker's ingress at this address; the broker stores "
            "each one and posts it to the subscriber of every Trigger whose filter it passes."
        ),
        "messages": {
            entry.type: {"$ref": f"#/components/messages/{entry.type}"} for entry in catalog
        },
    }


def _info(version: str) -> dict[str, Any]:
    return {
        "title": "Shop events",
        "version": version,
        "description": (
            "The CloudEvents the shop's services exchange through the Knative Broker: one "
            "message per event type of the catalog (catalog/schemas), sent and received over "
            "HTTP in the CloudEvents binary content mode (attributes as ce- headers, the data "
            "as a JSON body). Generated by `make asyncapi` from the catalog and the chart's "
            "manifests (manifests/); do not edit."
        ),
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
    }
