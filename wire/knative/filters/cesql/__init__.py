"""CloudEvents SQL Expression Language v1 (CESQL): parse once, evaluate per event.

    expression = parse("type = 'order.created' AND source LIKE '/shop/%'")
    expression.evaluate({"type": "order.created", "source": "/shop/orders", ...})
    # Evaluation(value=True, errors=())
    expression.matches(event)   # the Trigger filter rule: boolean true and no error

Keywords, function names and attribute names are case-insensitive; attributes are looked up by
their lower-case name in the mapping given to `evaluate`.
"""

from __future__ import annotations

from wire.knative.filters.cesql.errors import CesqlError, CesqlParseError, ErrorKind
from wire.knative.filters.cesql.expression import Evaluation, Expression, parse
from wire.knative.filters.cesql.values import Value

__all__ = [
    "CesqlError",
    "CesqlParseError",
    "ErrorKind",
    "Evaluation",
    "Expression",
    "Value",
    "parse",
]
