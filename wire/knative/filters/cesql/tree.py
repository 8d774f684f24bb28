"""The syntax tree of a CESQL expression, as the parser builds it and the compiler reads it.

Every node keeps `offset`, the 0-based position in the expression text of the token that
names it, so errors can say where they happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.knative.filters.cesql.values import Value


@dataclass(frozen=True, slots=True)
class Literal:
    """A boolean, integer or string literal."""

    value: Value
    offset: int


@dataclass(frozen=True, slots=True)
class UnsignedInteger(Literal):
    """An integer literal written without a sign, which a leading '-' may still turn negative.

    Only `-2147483648` needs this: its digits alone are out of the 32-bit range.
    """


@dataclass(frozen=True, slots=True)
class Attribute:
    """A context attribute or extension, by its lower-cased name."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Exists:
    """`EXISTS name`."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Unary:
    """`NOT x` (op 'NOT') or `-x` (op '-')."""

    op: str
    operand: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    """`x op y` for AND OR XOR = != < <= > >= + - * / %; `<>` is stored as '!='."""

    op: str
    left: Node
    right: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Like:
    """`x [NOT] LIKE 'pattern'`."""

    operand: Node
    pattern: str
    negated: bool
    offset: int


@dataclass(frozen=True, slots=True)
class In:
    """`x [NOT] IN (y1, y2, ...)`."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function invocation, by its upper-cased name."""

    name: str
    args: tuple[Node, ...]
    offset: int


Node = Literal | Attribute | Exists | Unary | Binary | Like | In | Call
