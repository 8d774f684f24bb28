"""Evaluators for CESQL operators: closures built once per expression, called once per event.

Every evaluator has the signature `(event, errors) -> value`. The error model (spec 3.3):
evaluation never stops at an error, errors are appended to `errors`, and an operator whose
operand raised an error returns the zero value of its own type (false, 0 or ''). A failed cast
at the operator itself is different: the operand takes the cast's zero value and the operator
still computes (so `NOT 10` is true, with a cast error). AND and OR short-circuit.

Whether an operand raised an error is seen by the length of `errors` changing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wire.knative.filters.cesql.errors import CesqlError, ErrorKind
from wire.knative.filters.cesql.like import Matcher
from wire.knative.filters.cesql.values import (
    INT32_MIN,
    Value,
    int32,
    to_boolean,
    to_integer,
    to_string,
)

Event = Mapping[str, Value]
Evaluator = Callable[[Event, list[CesqlError]], Value]
Arithmetic = Callable[[int, int, list[CesqlError], str], int]


def missing_attribute(name: str, where: str) -> CesqlError:
    """The error for an attribute the event does not have."""
    return CesqlError(ErrorKind.MISSING_ATTRIBUTE, f"the event has no attribute {name!r} ({where})")


def attribute(name: str, where: str) -> Evaluator:
    """An attribute's value; when absent, false and a missing-attribute error."""
    missing = missing_attribute(name, where)

    def run(event: Event, errors: list[CesqlError]) -> Value:
        value = event.get(name)
        if value is None:
            errors.append(missing)
            return False
        return value

    return run


def exists(name: str) -> Evaluator:
    """`EXISTS name`."""
    return lambda event, errors: name in event


def not_(operand: Evaluator, where: str) -> Evaluator:
    """`NOT x`."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        value = operand(event, errors)
        if len(errors) != before:
            return False
        if type(value) is not bool:
            value = to_boolean(value, errors, where)
        return not value

    return run


def negate(operand: Evaluator, where: str) -> Evaluator:
    """`-x`; negating -2147483648 overflows."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        value = operand(event, errors)
        if len(errors) != before:
            return 0
        if type(value) is not int:
            value = to_integer(value, errors, where)
        if value == INT32_MIN:
            return int32(-value, errors, where)
        return -value

    return run


def and_(left: Evaluator, right: Evaluator, where: str) -> Evaluator:
    """`x AND y`: y is not evaluated when x is false."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        if len(errors) != before:
            return False
        if type(x) is not bool:
            x = to_boolean(x, errors, where)
        if not x:
            return False
        before = len(errors)
        y = right(event, errors)
        if len(errors) != before:
            return False
        if type(y) is not bool:
            y = to_boolean(y, errors, where)
        return y

    return run


def or_(left: Evaluator, right: Evaluator, where: str) -> Evaluator:
    """`x OR y`: y is not evaluated when x is true."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        failed = len(errors) != before
        if not failed:
            if type(x) is not bool:
                x = to_boolean(x, errors, where)
            if x:
                return True
        before = len(errors)
        y = right(event, errors)
        if failed or len(errors) != before:
            return False
        if type(y) is not bool:
            y = to_boolean(y, errors, where)
        return y

    return run


def xor(left: Evaluator, right: Evaluator, where: str) -> Evaluator:
    """`x XOR y`."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        y = right(event, errors)
        if len(errors) != before:
            return False
        if type(x) is not bool:
            x = to_boolean(x, errors, where)
        if type(y) is not bool:
            y = to_boolean(y, errors, where)
        return x != y

    return run


def cast_like(target: Value, value: Value, errors: list[CesqlError], where: str) -> Value:
    """`value` cast to the type of `target`: the rule of `=` (right operand's type) and of IN."""
    if type(target) is str:
        return to_string(value)
    if type(target) is bool:
        return to_boolean(value, errors, where)
    return to_integer(value, errors, where)


def equal(left: Evaluator, right: Evaluator, negated: bool, where: str) -> Evaluator:
    """`x = y` (or `x != y`, `x <> y`): x is cast to the type of y."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        y = right(event, errors)
        if len(errors) != before:
            return False
        if type(x) is not type(y):
            x = cast_like(y, x, errors, where)
        return (x != y) if negated else (x == y)

    return run


def attribute_equal(name: str, constant: Value, negated: bool, where: str) -> Evaluator:
    """`attribute = literal`, the most common filter, with the lookup inlined."""
    missing = missing_attribute(name, where)
    kind = type(constant)

    def run(event: Event, errors: list[CesqlError]) -> Value:
        x = event.get(name)
        if x is None:
            errors.append(missing)
            return False
        if type(x) is not kind:
            x = cast_like(constant, x, errors, where)
        return (x != constant) if negated else (x == constant)

    return run


def compare(left: Evaluator, right: Evaluator, op: str, where: str) -> Evaluator:
    """`x < y`, `x <= y`, `x > y`, `x >= y` on integers."""
    test: Callable[[int, int], bool] = _COMPARISONS[op]

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        y = right(event, errors)
        if len(errors) != before:
            return False
        if type(x) is not int:
            x = to_integer(x, errors, where)
        if type(y) is not int:
            y = to_integer(y, errors, where)
        return test(x, y)

    return run


def arithmetic(left: Evaluator, right: Evaluator, op: str, where: str) -> Evaluator:
    """`x + y`, `x - y`, `x * y`, `x / y`, `x % y` on 32-bit integers."""
    apply = _ARITHMETIC[op]

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = left(event, errors)
        y = right(event, errors)
        if len(errors) != before:
            return 0
        if type(x) is not int:
            x = to_integer(x, errors, where)
        if type(y) is not int:
            y = to_integer(y, errors, where)
        return apply(x, y, errors, where)

    return run


def like(operand: Evaluator, matcher: Matcher, negated: bool) -> Evaluator:
    """`x [NOT] LIKE 'pattern'`; x is cast to a string."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        value = operand(event, errors)
        if len(errors) != before:
            return False
        if type(value) is not str:
            value = to_string(value)
        return matcher(value) != negated

    return run


def attribute_like(name: str, matcher: Matcher, negated: bool, where: str) -> Evaluator:
    """`attribute [NOT] LIKE 'pattern'` with the lookup inlined."""
    missing = missing_attribute(name, where)

    def run(event: Event, errors: list[CesqlError]) -> Value:
        value = event.get(name)
        if value is None:
            errors.append(missing)
            return False
        if type(value) is not str:
            value = to_string(value)
        return matcher(value) != negated

    return run


def in_(operand: Evaluator, items: list[Evaluator], negated: bool, where: str) -> Evaluator:
    """`x [NOT] IN (y1, y2, ...)`: each y cast to the type of x, like `x = y1 OR x = y2 ...`."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = operand(event, errors)
        failed = len(errors) != before
        for item in items:
            before = len(errors)
            y = item(event, errors)
            if len(errors) != before:
                failed = True
            elif not failed:
                if type(y) is not type(x):
                    y = cast_like(x, y, errors, where)
                if x == y:
                    return not negated
        return False if failed else negated

    return run


def in_constants(
    operand: Evaluator,
    constants: tuple[Value, ...],
    sets: dict[type, frozenset[Value]],
    negated: bool,
    where: str,
) -> Evaluator:
    """IN over literals: a set lookup by the operand's type, or one by one when a cast can fail."""

    def run(event: Event, errors: list[CesqlError]) -> Value:
        before = len(errors)
        x = operand(event, errors)
        if len(errors) != before:
            return False
        members = sets.get(type(x))
        if members is not None:
            return (x in members) != negated
        for constant in constants:
            y = constant if type(constant) is type(x) else cast_like(x, constant, errors, where)
            if x == y:
                return not negated
        return negated

    return run


def _divide(x: int, y: int, errors: list[CesqlError], where: str) -> int:
    if y == 0:
        errors.append(CesqlError(ErrorKind.MATH, f"division by zero ({where})"))
        return 0
    quotient = abs(x) // abs(y)
    return int32(quotient if (x < 0) == (y < 0) else -quotient, errors, where)


def _modulo(x: int, y: int, errors: list[CesqlError], where: str) -> int:
    if y == 0:
        errors.append(CesqlError(ErrorKind.MATH, f"modulo by zero ({where})"))
        return 0
    # Truncated division: the remainder takes the sign of the dividend.
    quotient = abs(x) // abs(y)
    return x - y * (quotient if (x < 0) == (y < 0) else -quotient)


_ARITHMETIC: dict[str, Arithmetic] = {
    "+": lambda x, y, errors, where: int32(x + y, errors, where),
    "-": lambda x, y, errors, where: int32(x - y, errors, where),
    "*": lambda x, y, errors, where: int32(x * y, errors, where),
    "/": _divide,
    "%": _modulo,
}

_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}
