"""JSON Schemas of event data, by event type: validation on receive and send, and `dataschema`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kit.json_schema import Problem, Schema


class DataError(ValueError):
    """Event data that does not match the schema of its type."""

    def __init__(self, event_type: str, problem: Problem) -> None:
        super().__init__(f"data of {event_type!r} does not match its schema: {problem.message}")
        self.location = problem.field or "(root)"


@dataclass(frozen=True)
class TypeSchema:
    """The schema of one event type and the URI that `dataschema` points at."""

    uri: str
    validator: Schema


class SchemaRegistry:
    """Schemas by event type; a type without one is not validated."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        self._types: dict[str, TypeSchema] = {}
        for event_type, schema in schemas.items():
            uri = str(schema.get("$id") or f"urn:shop:schema:{event_type}")
            self._types[event_type] = TypeSchema(uri, Schema(schema))

    def uri(self, event_type: str) -> str | None:
        schema = self._types.get(event_type)
        return schema.uri if schema else None

    def validate(self, event_type: str, data: Any) -> None:
        """Raise DataError when `data` does not match the schema registered for `event_type`."""
        schema = self._types.get(event_type)
        if schema is None:
            return
        problem = schema.validator.problem(data)
        if problem is not None:
            raise DataError(event_type, problem)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types


EMPTY_REGISTRY = SchemaRegistry({})
