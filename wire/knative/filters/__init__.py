"""Knative Trigger filter semantics and CloudEvents SQL, shared by the broker and the viewer.

    matches = compile_trigger_filter(trigger["spec"])   # raises FilterError like the webhook
    matches({"type": "order.created", "source": "/shop", ...})  # -> bool

An event is a mapping of attribute name to value for every context attribute and extension
present (`data` excluded): strings in binary mode; ints and bools keep their type in structured
mode.
"""

from __future__ import annotations

from wire.knative.filters.dialects import (
    Event,
    FilterError,
    Predicate,
    compile_filters,
    compile_trigger_filter,
    compile_user_filter,
)

__all__ = [
    "Event",
    "FilterError",
    "Predicate",
    "compile_filters",
    "compile_trigger_filter",
    "compile_user_filter",
]
