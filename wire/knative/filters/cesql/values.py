"""CESQL values and the type casts between them (spec sections 3.1 and 3.7).

A value is a Python `str`, `int` (32-bit range) or `bool`. Casts that can fail append a cast
error to the caller's error list and return the zero value of the target type, as the spec asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from wire.knative.filters.cesql.errors import CesqlError, ErrorKind

Value = str | int | bool
Cast = Callable[[Value, list[CesqlError], str], Value]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# ASCII digits only: Python's int() would also take "1_000", " 7" and non-ASCII digits.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def type_name(value: Value) -> str:
    """The CESQL name of a value's type, for messages."""
    if type(value) is bool:
        return "Boolean"
    if type(value) is int:
        return "Integer"
    return "String"


def to_string(value: Value) -> str:
    """Any value as a String: booleans as 'true'/'false', integers in base 10. Never fails."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def to_integer(value: Value, errors: list[CesqlError], where: str) -> int:
    """A value as an Integer; a string that is not a 32-bit base-10 integer is a cast error."""
    if type(value) is int:
        return value
    if type(value) is bool:
        return 1 if value else 0
    text = to_string(value)
    if _INTEGER_TEXT.fullmatch(text):
        number = int(text)
        if INT32_MIN <= number <= INT32_MAX:
            return number
        reason = "it is outside the 32-bit range"
    else:
        reason = "it is not a base-10 integer"
    errors.append(
        CesqlError(ErrorKind.CAST, f"cannot cast {text!r} to Integer: {reason} ({where})")
    )
    return 0


def to_boolean(value: Value, errors: list[CesqlError], where: str) -> bool:
    """A value as a Boolean in an implicit cast: only 'true'/'false' in any case and booleans.

    An Integer is not cast implicitly (the TCK's `NOT 10` is a cast error); BOOL(x) does that.
    """
    if type(value) is bool:
        return value
    if type(value) is int:
        errors.append(
            CesqlError(
                ErrorKind.CAST,
                f"cannot cast Integer {value} to Boolean implicitly; use BOOL(x) ({where})",
            )
        )
        return False
    text = to_string(value).lower()
    if text == "true":
        return True
    if text != "false":
        errors.append(
            CesqlError(
                ErrorKind.CAST, f"cannot cast {value!r} to Boolean: not 'true' or 'false' ({where})"
            )
        )
    return False


def to_boolean_explicit(value: Value, errors: list[CesqlError], where: str) -> bool:
    """A value as a Boolean for BOOL(x): also an Integer, which is true unless 0."""
    if type(value) is int:
        return value != 0
    return to_boolean(value, errors, where)


def int32(number: int, errors: list[CesqlError], where: str) -> int:
    """An arithmetic result kept in 32 bits: on overflow, a math error and the nearest bound.

    The spec defines overflow only for ABS (2147483647 and a math error); every operator here
    follows that rule rather than wrapping around silently.
    """
    if INT32_MIN <= number <= INT32_MAX:
        return number
    errors.append(
        CesqlError(
            ErrorKind.MATH, f"integer overflow: {number} is outside the 32-bit range ({where})"
        )
    )
    return INT32_MAX if number > INT32_MAX else INT32_MIN


def cast_string(value: Value, errors: list[CesqlError], where: str) -> Value:
    """The String parameter cast of a function argument."""
    return to_string(value)


def cast_integer(value: Value, errors: list[CesqlError], where: str) -> Value:
    """The Integer parameter cast of a function argument."""
    return to_integer(value, errors, where)


def cast_any(value: Value, errors: list[CesqlError], where: str) -> Value:
    """The parameter 'cast' of a function that takes any type: the value itself."""
    return value
