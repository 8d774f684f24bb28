"""JSON Schema as every edge applies it: draft 2020-12, ECMA-262 patterns, short problems.

Two things jsonschema does its own way are changed here, once for the JSON APIs and the event
catalog alike:

- `pattern` is an ECMA-262 regular expression (JSON Schema 2020-12, section 6.3.3), matched
  with `regress`. Python's `re` lets `^[A-Z]{3}$` match "EUR\\n", because its `$` also matches
  before a final newline; ECMA-262's `$` does not.
- A problem is described without repeating the instance: jsonschema's messages quote the value,
  so a 100,000-character name would come back in a 100 KB error. `Problem` names the field, the
  rule and its limit, and quotes a client's value only cut short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regress
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from wire.strings import QUOTE_CHARACTERS, quote


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> regress.Regex:
    return regress.Regex(pattern)


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and _compiled(pattern).find(instance) is None:
        yield ValidationError(f"does not match {pattern}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@dataclass(frozen=True)
class Problem:
    """Why an instance does not match: where (a JSON Pointer without the leading slash, or
    None for the whole document), what, and the limit the rule sets when it sets one."""

    field: str | None
    message: str
    limit: Any = None


class Schema:
    """A compiled draft 2020-12 schema; `problem` tells why an instance does not match."""

    def __init__(self, schema: Mapping[str, Any], what: str = "the document") -> None:
        Draft202012Validator.check_schema(schema)
        self._what = what
        for pattern in _patterns(schema):
            try:
                _compiled(pattern)
            except regress.RegressError as error:
                raise SchemaError(f"{pattern!r} is not an ECMA-262 pattern: {error}") from None
        self._validator = _Validator(schema)

    def problem(self, instance: Any) -> Problem | None:
        error = best_match(self._validator.iter_errors(instance))
        return None if error is None else describe(error, self._what)


def field_name(parts: Iterable[str | int]) -> str | None:
    """Where a value sits, as a JSON Pointer without the leading slash (None for the whole
    document); a client's long key is cut to QUOTE_CHARACTERS."""
    cut = [
        str(part) if len(str(part)) <= QUOTE_CHARACTERS else f"{str(part)[:QUOTE_CHARACTERS]}..."
        for part in parts
    ]
    return "/".join(cut) or None


def describe(error: ValidationError, what: str = "the document") -> Problem:
    """A short account of one validation error, naming the field and the rule's limit."""
    field = field_name(error.absolute_path)
    name = f"{field!r}" if field else what
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = next((key for key in value if key not in instance), value[0])
        inner = field_name([*error.absolute_path, missing])
        return Problem(inner, f"{inner!r} is required")
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = next((key for key in instance if key not in allowed), "?")
        return Problem(
            field_name([*error.absolute_path, extra]), f"{name} has no property {quote(extra)}"
        )
    if keyword == "type":
        kinds = " or ".join(value) if isinstance(value, list) else value
        return Problem(field, f"{name} must be of type {kinds}")
    rule = _RULES.get(keyword)
    if rule is not None:
        return Problem(field, f"{name} {rule(value)}", value)
    return Problem(field, f"{name} breaks the schema's {keyword!r} rule")


_RULES: dict[str, Callable[[Any], str]] = {
    "maxLength": lambda value: f"must be at most {value} characters",
    "minLength": lambda value: f"must be at least {value} characters",
    "maxItems": lambda value: f"must hold at most {value} items",
    "minItems": lambda value: f"must hold at least {value} items",
    "maxProperties": lambda value: f"must hold at most {value} properties",
    "minProperties": lambda value: f"must hold at least {value} properties",
    "maximum": lambda value: f"must be at most {value}",
    "minimum": lambda value: f"must be at least {value}",
    "exclusiveMaximum": lambda value: f"must be less than {value}",
    "exclusiveMinimum": lambda value: f"must be more than {value}",
    "pattern": lambda value: f"must match {value}",
    "enum": lambda value: f"must be one of {', '.join(map(repr, value))}",
    "const": lambda value: f"must be {value!r}",
    "format": lambda value: f"must be a {value}",
}


def _patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns(item)
