"""The event catalog: one JSON Schema per event type in `schemas/<type>.json`, and its loader.

Each schema states its type's `$id` (`urn:shop:schema:<type>`, also the events' `dataschema`), a
one-line `description`, the producing service (`x-producer`) and at least one valid example. The
kit validates `data` against it on sending and receiving; the chart and the tests list it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import SchemaError

from kit.json_schema import Schema
from kit.schemas import SchemaRegistry

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_URN_PREFIX = "urn:shop:schema:"
#: A stock-keeping unit, wherever one appears: in event data (each schema states it, as a
#: published schema must stand alone; a test holds them to this), order lines and /stock/<sku>.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class CatalogError(ValueError):
    """A schema file that does not describe its event type as the catalog requires."""


@dataclass(frozen=True)
class EventType:
    """One type of event the shop carries."""

    type: str
    description: str
    producer: str
    schema_uri: str
    schema: Mapping[str, Any]
    examples: tuple[Any, ...]


@dataclass(frozen=True)
class Catalog:
    """Every event type, by name, with the schema registry the kit validates with."""

    types: Mapping[str, EventType]
    registry: SchemaRegistry

    def __iter__(self) -> Iterator[EventType]:
        return iter(self.types[name] for name in sorted(self.types))

    def __contains__(self, event_type: object) -> bool:
        return event_type in self.types

    def __getitem__(self, event_type: str) -> EventType:
        return self.types[event_type]

    def names(self) -> list[str]:
        """The event types, sorted."""
        return sorted(self.types)

    def produced_by(self, service: str) -> list[str]:
        """The event types `service` produces, sorted."""
        return sorted(name for name, entry in self.types.items() if entry.producer == service)

    def producers(self) -> dict[str, str]:
        """Each event type's producing service."""
        return {name: self.types[name].producer for name in sorted(self.types)}


def load_catalog(directory: Path = SCHEMAS_DIR) -> Catalog:
    """The catalog of the schemas in `directory` (the shipped one by default, read once)."""
    return _load(directory.resolve())


@cache
def _load(directory: Path) -> Catalog:
    types: dict[str, EventType] = {}
    for path in sorted(directory.glob("*.json")):
        entry = _read_entry(path)
        types[entry.type] = entry
    if not types:
        raise CatalogError(f"{directory}: no event schemas (*.json) found")
    registry = SchemaRegistry({name: entry.schema for name, entry in types.items()})
    return Catalog(types, registry)


def _read_entry(path: Path) -> EventType:
    event_type = path.name.removesuffix(".json")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise CatalogError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(schema, dict):
        raise CatalogError(f"{path}: a schema must be a JSON object")
    expected_id = SCHEMA_URN_PREFIX + event_type
    if schema.get("$id") != expected_id:
        raise CatalogError(f"{path}: $id must be {expected_id!r}, not {schema.get('$id')!r}")
    for key in ("description", "x-producer"):
        if not isinstance(schema.get(key), str) or not schema[key].strip():
            raise CatalogError(f"{path}: {key!r} must be a non-empty string")
    try:
        validator = Schema(schema)
    except SchemaError as error:
        raise CatalogError(f"{path}: not a valid draft 2020-12 schema: {error.message}") from error
    examples = schema.get("examples")
    if not isinstance(examples, list) or not examples:
        raise CatalogError(f"{path}: 'examples' must list at least one valid example")
    for index, example in enumerate(examples):
        problem = validator.problem(example)
        if problem is not None:
            raise CatalogError(f"{path}: examples[{index}] is invalid: {problem.message}")
    return EventType(
        type=event_type,
        description=schema["description"],
        producer=schema["x-producer"],
        schema_uri=expected_id,
        schema=schema,
        examples=tuple(examples),
    )
