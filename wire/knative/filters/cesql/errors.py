"""The errors of CESQL: the kinds the TCK names, evaluation errors, and the parse error."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    """The error types every CESQL engine supports (spec section 3.3), named as in the TCK."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class CesqlError:
    """One error met while evaluating an expression: its kind and what happened where."""

    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class CesqlParseError(ValueError):
    """An expression that is not valid CESQL; the message says what is wrong and at which column."""

    kind = ErrorKind.PARSE

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of a 0-based character offset in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def where(text: str, offset: int) -> str:
    """'column 7', or 'line 2, column 3' when the expression spans several lines."""
    line, column = position(text, offset)
    if "\n" in text:
        return f"line {line}, column {column}"
    return f"column {column}"
