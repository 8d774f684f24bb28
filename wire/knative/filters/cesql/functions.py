"""The built-in CESQL functions (spec section 3.5, plus the casting functions the TCK uses).

A function is found by its upper-cased name and its number of arguments. Arguments arrive
already cast to the parameter types; a body that meets a problem appends a function-evaluation
(or math) error and still returns the value the spec defines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wire.knative.filters.cesql.errors import CesqlError, ErrorKind
from wire.knative.filters.cesql.values import (
    INT32_MAX,
    INT32_MIN,
    Cast,
    Value,
    cast_any,
    cast_integer,
    cast_string,
    to_boolean_explicit,
    to_integer,
    to_string,
)

Body = Callable[[Sequence[Value], list[CesqlError], str], Value]

# Unicode White_Space (what TRIM removes); Python's str.strip() would also take U+001C..U+001F.
WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True, slots=True)
class Function:
    """One overload: parameter casts, the cast of any further (variadic) arguments, the body."""

    name: str
    params: tuple[Cast, ...]
    variadic: Cast | None
    zero: Value
    body: Body

    def accepts(self, arity: int) -> bool:
        if self.variadic is None:
            return arity == len(self.params)
        return arity >= len(self.params)


def resolve(name: str, arity: int) -> Function | None:
    """The overload of `name` taking `arity` arguments, or None when there is none."""
    for function in BUILTINS.get(name, ()):
        if function.accepts(arity):
            return function
    return None


def _fail(errors: list[CesqlError], message: str, where: str) -> None:
    errors.append(CesqlError(ErrorKind.FUNCTION_EVALUATION, f"{message} ({where})"))


def _length(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return len(str(args[0]))


def _concat(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return "".join(str(arg) for arg in args)


def _concat_ws(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return str(args[0]).join(str(arg) for arg in args[1:])


def _lower(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return str(args[0]).lower()


def _upper(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return str(args[0]).upper()


def _trim(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return str(args[0]).strip(WHITE_SPACE)


def _left(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    text, count = str(args[0]), int(args[1])
    if count < 0:
        _fail(errors, f"LEFT: the length must not be negative, got {count}", where)
        return text
    return text[:count]


def _right(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    text, count = str(args[0]), int(args[1])
    if count < 0:
        _fail(errors, f"RIGHT: the length must not be negative, got {count}", where)
        return text
    return text[len(text) - count :] if count < len(text) else text


def _substring(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    """SUBSTRING(x, pos[, len]): 1-based `pos`, negative from the end, 0 gives ''."""
    text, start = str(args[0]), int(args[1])
    length = int(args[2]) if len(args) == 3 else None
    if start > len(text) or start < -len(text):
        _fail(errors, f"SUBSTRING: position {start} is outside a string of {len(text)}", where)
        return ""
    if length is not None and length < 0:
        _fail(errors, f"SUBSTRING: the length must not be negative, got {length}", where)
        return ""
    if start == 0:
        return ""
    begin = start - 1 if start > 0 else len(text) + start
    return text[begin:] if length is None else text[begin : begin + length]


def _abs(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    number = int(args[0])
    if number == INT32_MIN:
        errors.append(CesqlError(ErrorKind.MATH, f"ABS: {number} has no 32-bit absolute ({where})"))
        return INT32_MAX
    return abs(number)


def _int(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return to_integer(args[0], errors, where)


def _bool(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return to_boolean_explicit(args[0], errors, where)


def _string(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    return to_string(args[0])


def _is_int(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    probe: list[CesqlError] = []
    to_integer(args[0], probe, where)
    return not probe


def _is_bool(args: Sequence[Value], errors: list[CesqlError], where: str) -> Value:
    probe: list[CesqlError] = []
    to_boolean_explicit(args[0], probe, where)
    return not probe


def _functions(*functions: Function) -> dict[str, tuple[Function, ...]]:
    table: dict[str, tuple[Function, ...]] = {}
    for function in functions:
        table[function.name] = (*table.get(function.name, ()), function)
    return table


TEXT, INTEGER, ANY = cast_string, cast_integer, cast_any

BUILTINS = _functions(
    Function("LENGTH", (TEXT,), None, 0, _length),
    Function("CONCAT", (), TEXT, "", _concat),
    Function("CONCAT_WS", (TEXT,), TEXT, "", _concat_ws),
    Function("LOWER", (TEXT,), None, "", _lower),
    Function("UPPER", (TEXT,), None, "", _upper),
    Function("TRIM", (TEXT,), None, "", _trim),
    Function("LEFT", (TEXT, INTEGER), None, "", _left),
    Function("RIGHT", (TEXT, INTEGER), None, "", _right),
    Function("SUBSTRING", (TEXT, INTEGER), None, "", _substring),
    Function("SUBSTRING", (TEXT, INTEGER, INTEGER), None, "", _substring),
    Function("ABS", (INTEGER,), None, 0, _abs),
    # INT, BOOL and STRING are the explicit casts of section 3.7; IS_INT and IS_BOOL tell
    # whether INT(x) and BOOL(x) would succeed.
    Function("INT", (ANY,), None, 0, _int),
    Function("BOOL", (ANY,), None, False, _bool),
    Function("STRING", (ANY,), None, "", _string),
    Function("IS_INT", (ANY,), None, False, _is_int),
    Function("IS_BOOL", (ANY,), None, False, _is_bool),
)
