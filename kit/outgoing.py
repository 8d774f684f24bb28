"""Events a service sends: built as wire events and serialised in binary mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kit.schemas import SchemaRegistry
from wire.http_binding import WireEvent, to_binary
from wire.spec import (
    PARTITION_KEY_EXTENSION,
    AttributeValue,
    check_attribute_name,
    format_time,
)


@dataclass(frozen=True)
class NewEvent:
    """An event a handler or a route wants sent; the kit adds id, source, time and the rest."""

    type: str
    data: Any
    subject: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Message:
    """An HTTP message (binary mode) ready to post or to return as a reply."""

    headers: dict[str, str]
    body: bytes

    def to_json(self) -> str:
        return json.dumps(self.headers)

    @classmethod
    def from_stored(cls, headers_json: str, body: bytes | None) -> Message:
        return cls(json.loads(headers_json), body or b"")


def build_event(
    new: NewEvent,
    *,
    source: str,
    schemas: SchemaRegistry,
    traceparent: str,
    partition_by_subject: bool = False,
) -> WireEvent:
    """The event `new` as this service sends it, its data checked against the schema of its type.

    With `partition_by_subject` its subject is also its `partitionkey` (unless `new` sets one),
    so that a Kafka broker keeps the events of one subject in order.
    """
    schemas.validate(new.type, new.data)
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": new.id or str(uuid.uuid4()),
        "source": source,
        "type": new.type,
        "time": format_time(datetime.now(UTC)),
        "datacontenttype": "application/json",
        "traceparent": traceparent,
    }
    schema_uri = schemas.uri(new.type)
    if schema_uri:
        attributes["dataschema"] = schema_uri
    if new.subject:
        attributes["subject"] = new.subject
        if partition_by_subject:
            attributes[PARTITION_KEY_EXTENSION] = new.subject
    for name, value in new.extensions.items():
        check_attribute_name(name)
        attributes[name] = str(value)
    return WireEvent(attributes, json.dumps(new.data, separators=(",", ":")).encode())


def to_message(event: WireEvent) -> Message:
    """The binary-mode HTTP message of an event."""
    headers, body = to_binary(event)
    return Message(headers, body)
