"""A Trigger's filter in words, as the viewer, `shop up`'s table and `shop topology` show it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

ALL_EVENTS = "all events"


def describe_filter(spec: Mapping[str, Any]) -> str:
    """A Trigger's filter in words: `filters` when non-empty, else `filter.attributes`."""
    filters = spec.get("filters")
    if isinstance(filters, Sequence) and not isinstance(filters, str) and filters:
        parts = [_describe_entry(entry) for entry in filters]
        described = [part for part in parts if part]
        if described:
            return " and ".join(described)
    legacy = spec.get("filter")
    attributes = legacy.get("attributes") if isinstance(legacy, Mapping) else None
    if isinstance(attributes, Mapping) and attributes:
        return " and ".join(
            f"{name} present" if value == "" else f"{name} = {value}"
            for name, value in attributes.items()
        )
    return ALL_EVENTS


def _describe_entry(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        return json.dumps(entry)
    words = {"exact": "=", "prefix": "starts with", "suffix": "ends with"}
    for dialect, word in words.items():
        pairs = entry.get(dialect)
        if isinstance(pairs, Mapping) and pairs:
            return " and ".join(f"{name} {word} {value}" for name, value in pairs.items())
    for dialect, joiner in (("all", " and "), ("any", " or ")):
        items = entry.get(dialect)
        if isinstance(items, Sequence) and not isinstance(items, str) and items:
            return "(" + joiner.join(_describe_entry(item) for item in items) + ")"
    negated = entry.get("not")
    if isinstance(negated, Mapping):
        return f"not ({_describe_entry(negated)})"
    expression = entry.get("cesql")
    if isinstance(expression, str) and expression.strip():
        return expression.strip()
    return ""
