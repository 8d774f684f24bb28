"""Events a service sends: built with the `cloudevents` SDK and serialised in binary mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from kit.schemas import SchemaRegistry
from wire.spec import check_attribute_name


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


def build_cloudevent(
    new: NewEvent, *, source: str, schemas: SchemaRegistry, traceparent: str
) -> CloudEvent:
    """The SDK event for `new`, its data checked against the schema of its type."""
    schemas.validate(new.type, new.data)
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": new.id or str(uuid.uuid4()),
        "source": source,
        "type": new.type,
        "time": datetime.now(UTC),
        "datacontenttype": "application/json",
        "traceparent": traceparent,
    }
    schema_uri = schemas.uri(new.type)
    if schema_uri:
        attributes["dataschema"] = schema_uri
    if new.subject:
        attributes["subject"] = new.subject
    for name, value in new.extensions.items():
        check_attribute_name(name)
        attributes[name] = str(value)
    # Data goes in as JSON bytes: the SDK would write a list or a number as its Python repr.
    body = json.dumps(new.data, separators=(",", ":")).encode()
    return CloudEvent(attributes, body)


def to_message(event: CloudEvent) -> Message:
    """The binary-mode HTTP message of an SDK event."""
    message = to_binary_event(event)
    return Message(dict(message.headers), bytes(message.body))
