"""An event type of the catalog as an AsyncAPI 3.0 message: CloudEvents headers, data payload.

The headers are the event's attributes as the CloudEvents HTTP binding's binary mode carries
them (`ce-<attribute>`; `datacontenttype` is Content-Type, a protocol header, so the HTTP
binding's); the payload is the catalog schema; the example is what the kit would post.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from catalog.loader import Catalog, EventType
from kit.config import KitConfig
from kit.outgoing import NewEvent, build_event
from wire.http_binding import HEADER_PREFIX, WireEvent, to_binary
from wire.spec import REQUIRED_ATTRIBUTES, SPECVERSION, format_time

HTTP_BINDING_VERSION = "0.3.0"
CONTENT_TYPE = "application/json"
# Keywords that mean in draft 2020-12 (the catalog's dialect) what they mean in draft-07 (the
# AsyncAPI Schema's base): a payload schema with any other keyword is refused, not misread.
PAYLOAD_KEYWORDS = frozenset(
    {
        "$id",
        "title",
        "description",
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minProperties",
        "maxProperties",
        "examples",
        "default",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
# The one example of each message: fixed, so that the document is the same on every run.
EXAMPLE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EXAMPLE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_EXAMPLE_IDS = uuid.UUID("6f1c3d2e-0b7a-4c55-9e0f-3a2b1c4d5e6f")

#: Each attribute a shop event can carry, as its binary-mode header: (JSON Schema, description).
#: `type`, `source` and `dataschema` get their per-type value on top of this.
ATTRIBUTES: Mapping[str, tuple[Mapping[str, Any], str]] = {
    "specversion": ({"const": SPECVERSION}, "The CloudEvents version."),
    "id": (
        {"minLength": 1},
        "Unique for its source; a receiver handles a repeated (source, id) once.",
    ),
    "source": (
        {"minLength": 1, "format": "uri-reference"},
        "The producing service: /shop/<service> unless its EVENT_SOURCE says otherwise.",
    ),
    "type": ({}, "The event type: the catalog entry this message is."),
    "subject": (
        {"minLength": 1},
        "What the event is about (the description says which id); saga events: the order id.",
    ),
    "time": (
        {"format": "date-time"},
        "When it happened (RFC 3339, UTC); the kit always sets it.",
    ),
    "datacontenttype": (
        {"const": CONTENT_TYPE},
        "The media type of the data; in binary mode it is the Content-Type header.",
    ),
    "dataschema": (
        {"format": "uri"},
        "The catalog schema of the data (catalog/schemas/<type>.json $id); the kit always sets it.",
    ),
    "traceparent": (
        {"pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
        "W3C trace context of the span that sent it (CloudEvents Distributed Tracing extension).",
    ),
    "partitionkey": (
        {"minLength": 1},
        "The subject again, from services that partition by it: a Kafka broker's record key "
        "(CloudEvents Partitioning extension).",
    ),
}


class PayloadSchemaError(ValueError):
    """A catalog schema the AsyncAPI Schema (draft-07) would read otherwise than draft 2020-12."""


def example_event(catalog: Catalog, entry: EventType) -> WireEvent:
    """The entry's first example as its producer's kit would send it (time and ids fixed)."""
    return build_event(
        NewEvent(
            entry.type,
            entry.examples[0],
            id=str(uuid.uuid5(_EXAMPLE_IDS, entry.type)),
        ),
        source=KitConfig.from_env(entry.producer, {}).source,
        schemas=catalog.registry,
        traceparent=EXAMPLE_TRACEPARENT,
    ).with_attributes(time=format_time(EXAMPLE_TIME))


def message(entry: EventType, example: WireEvent) -> dict[str, Any]:
    headers, body = to_binary(example)
    return {
        "name": entry.type,
        "title": entry.type,
        "summary": entry.description,
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": f"#/components/schemas/{entry.type}.headers"},
        "payload": {"$ref": f"#/components/schemas/{entry.type}"},
        "correlationId": {
            "description": "The event's subject: the entity its events share.",
            "location": "$message.header#/ce-subject",
        },
        "x-producer": entry.producer,
        "bindings": {
            "http": {
                "headers": {
                    "type": "object",
                    "properties": {
                        "Content-Type": {
                            "type": "string",
                            "const": CONTENT_TYPE,
                            "description": ATTRIBUTES["datacontenttype"][1],
                        }
                    },
                    "required": ["Content-Type"],
                },
                "bindingVersion": HTTP_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": "example",
                "summary": f"An {entry.type} event as {entry.producer} sends it.",
                "headers": {
                    name: value for name, value in headers.items() if name.startswith(HEADER_PREFIX)
                },
                "payload": json.loads(body),
            }
        ],
    }


def headers_schema(entry: EventType) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {
        "type": {"const": entry.type},
        "source": {"examples": [KitConfig.from_env(entry.producer, {}).source]},
        "dataschema": {"const": entry.schema_uri},
    }
    properties = {
        HEADER_PREFIX + name: {
            "type": "string",
            **schema,
            **values.get(name, {}),
            "description": description,
        }
        for name, (schema, description) in ATTRIBUTES.items()
        if name != "datacontenttype"
    }
    return {
        "type": "object",
        "title": f"{entry.type} attributes",
        "description": (
            "The event's CloudEvents attributes as the HTTP binding's binary mode carries "
            "them: one ce-<name> header each (percent-encoded where a header cannot carry a "
            "character); the data's media type is the Content-Type header (bindings.http)."
        ),
        "required": [HEADER_PREFIX + name for name in REQUIRED_ATTRIBUTES],
        "properties": properties,
    }


def payload_schema(entry: EventType) -> dict[str, Any]:
    """The catalog schema without `$schema` (the AsyncAPI Schema states its own dialect)."""
    unknown = sorted(_keywords(entry.schema) - PAYLOAD_KEYWORDS)
    if unknown:
        raise PayloadSchemaError(
            f"catalog/schemas/{entry.type}.json uses {', '.join(unknown)}, which the AsyncAPI "
            "Schema (draft-07) does not read as draft 2020-12 does"
        )
    return {key: value for key, value in entry.schema.items() if key != "$schema"}


def _keywords(schema: Any) -> set[str]:
    """The keywords of a schema and its subschemas (x- extensions and `$schema` left out)."""
    if not isinstance(schema, Mapping):
        return set()
    found = {key for key in schema if not key.startswith("x-") and key != "$schema"}
    for key, value in schema.items():
        if key in ("properties",) and isinstance(value, Mapping):
            for subschema in value.values():
                found |= _keywords(subschema)
        elif key in ("items", "additionalProperties", "not"):
            found |= _keywords(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            for subschema in value:
                found |= _keywords(subschema)
    return found
