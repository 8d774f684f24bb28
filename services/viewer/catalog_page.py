"""The event catalog as people read it: the AsyncAPI document and a page made from it.

    GET /asyncapi.json   the AsyncAPI 3.0 document (catalog/asyncapi.json, `make asyncapi`)
    GET /catalog         that document as an HTML page, rendered here (nothing loaded from
                         elsewhere): each event type with its description, who sends and who
                         receives it, its CloudEvents attributes, its data's fields and an example

The page reads the document only, so it shows what the document says and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, render_template, send_file

from catalog.asyncapi import DOCUMENT_FILE, load_document

routes = Blueprint("viewer_catalog_page", __name__, template_folder="templates")
# Constraints shown in a field's row, in this order, as `keyword value`.
_CONSTRAINTS = (
    "const",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
)


@dataclass(frozen=True)
class Party:
    """A service that sends or receives a type, and through what (a Trigger, its sink...)."""

    service: str
    via: str


@dataclass(frozen=True)
class Row:
    """One line of an attributes or fields table."""

    name: str
    required: bool
    type: str
    constraints: str
    description: str


@dataclass(frozen=True)
class EventView:
    """One message of the document, as the page shows it."""

    type: str
    description: str
    producer: str
    content_type: str
    senders: tuple[Party, ...]
    receivers: tuple[Party, ...]
    attributes: tuple[Row, ...]
    fields: tuple[Row, ...]
    example_headers: str
    example_payload: str


@dataclass(frozen=True)
class CatalogView:
    """The whole page: the document's info, its channels and servers, and every event type."""

    title: str
    version: str
    description: str
    channels: tuple[tuple[str, str], ...]
    servers: tuple[tuple[str, str, str], ...]
    events: tuple[EventView, ...]


@routes.get("/asyncapi.json")
def asyncapi_json() -> Response:
    """The checked-in AsyncAPI document, as it is."""
    response = send_file(DOCUMENT_FILE, mimetype="application/json", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get("/catalog")
def catalog_page() -> Response:
    """The AsyncAPI document as a page."""
    html = render_template("catalog.html", view=catalog_view(load_document()))
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-cache"})


def catalog_view(document: Mapping[str, Any]) -> CatalogView:
    """What the page shows of an AsyncAPI 3.0 document such as catalog.asyncapi makes."""
    info = document.get("info", {})
    schemas = document.get("components", {}).get("schemas", {})
    messages = document.get("components", {}).get("messages", {})
    operations = document.get("operations", {})
    events = tuple(
        _event_view(name, message, operations, schemas) for name, message in messages.items()
    )
    return CatalogView(
        title=str(info.get("title", "")),
        version=str(info.get("version", "")),
        description=str(info.get("description", "")),
        channels=tuple(
            (str(channel.get("title", key)), str(channel.get("address", "")))
            for key, channel in document.get("channels", {}).items()
        ),
        servers=tuple(
            (key, f"{server.get('protocol', '')}://{server.get('host', '')}", _text(server))
            for key, server in document.get("servers", {}).items()
        ),
        events=tuple(sorted(events, key=lambda event: event.type)),
    )


def _event_view(
    name: str,
    message: Mapping[str, Any],
    operations: Mapping[str, Any],
    schemas: Mapping[str, Any],
) -> EventView:
    senders: list[Party] = []
    receivers: list[Party] = []
    for key, operation in operations.items():
        if name not in _message_names(operation):
            continue
        party = Party(str(operation.get("x-service", key)), str(operation.get("title", key)))
        (senders if operation.get("action") == "send" else receivers).append(party)
    headers = _resolve(message.get("headers", {}), schemas)
    protocol_headers = message.get("bindings", {}).get("http", {}).get("headers", {})
    payload = _resolve(message.get("payload", {}), schemas)
    examples = message.get("examples") or [{}]
    return EventView(
        type=name,
        description=_text(message),
        producer=str(message.get("x-producer", "")),
        content_type=str(message.get("contentType", "")),
        senders=tuple(senders),
        receivers=tuple(receivers),
        attributes=tuple(_rows(headers)) + tuple(_rows(protocol_headers)),
        fields=tuple(_rows(payload)),
        example_headers=json.dumps(examples[0].get("headers", {}), indent=2),
        example_payload=json.dumps(examples[0].get("payload", {}), indent=2, ensure_ascii=False),
    )


def _message_names(operation: Mapping[str, Any]) -> set[str]:
    """The messages an operation refers to (`#/channels/<c>/messages/<name>`), by name."""
    return {str(ref.get("$ref", "")).rsplit("/", 1)[-1] for ref in operation.get("messages", [])}


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    """A schema, or the components schema its local `$ref` names."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: Mapping[str, Any] = schemas.get(ref.removeprefix("#/components/schemas/"), {})
        return found
    return schema


def _rows(schema: Mapping[str, Any], prefix: str = "") -> Iterator[Row]:
    """One row per property, nested objects and array items flattened (`lines[].sku`)."""
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield Row(
            name=path,
            required=name in required,
            type=_type(prop),
            constraints=_constraints(prop),
            description=_text(prop),
        )
        if "properties" in prop:
            yield from _rows(prop, f"{path}.")
        items = prop.get("items")
        if isinstance(items, Mapping) and "properties" in items:
            yield from _rows(items, f"{path}[].")


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type", "")
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return f"array of {schema['items'].get('type', 'any')}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _constraints(schema: Mapping[str, Any]) -> str:
    shown = [
        f"{keyword} {json.dumps(schema[keyword], ensure_ascii=False)}"
        for keyword in _CONSTRAINTS
        if keyword in schema
    ]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and "const" not in schema:
        shown.append(f"e.g. {json.dumps(examples[0], ensure_ascii=False)}")
    return ", ".join(shown)


def _text(item: Mapping[str, Any]) -> str:
    return str(item.get("description") or item.get("summary") or "")
