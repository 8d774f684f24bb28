"""A parsed CESQL expression and the result of evaluating it against one event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wire.knative.filters.cesql.compiler import compile_tree
from wire.knative.filters.cesql.errors import CesqlError
from wire.knative.filters.cesql.operators import Evaluator
from wire.knative.filters.cesql.parser import parse_tree
from wire.knative.filters.cesql.values import Value


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What an expression gave for one event: its value, and every error met on the way."""

    value: Value
    errors: tuple[CesqlError, ...] = ()


@dataclass(frozen=True, slots=True)
class Expression:
    """A CESQL expression compiled once, to be evaluated against many events."""

    text: str
    _run: Evaluator = field(repr=False, compare=False)

    def evaluate(self, event: Mapping[str, Value]) -> Evaluation:
        """The value and errors for an event given as attribute name -> value (absent = missing)."""
        errors: list[CesqlError] = []
        value = self._run(event, errors)
        return Evaluation(value, tuple(errors))

    def matches(self, event: Mapping[str, Value]) -> bool:
        """The filter rule: true only when the expression gives boolean true without any error."""
        errors: list[CesqlError] = []
        return self._run(event, errors) is True and not errors


def parse(expression: str) -> Expression:
    """Parse and compile a CESQL expression; CesqlParseError says what is wrong and where."""
    return Expression(expression, compile_tree(parse_tree(expression), expression))
