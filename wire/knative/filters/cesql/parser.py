"""Text to syntax tree: the Lark LALR parser for CESQL and its error messages."""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import cast

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken, VisitError

from wire.knative.filters.cesql.errors import CesqlParseError, position, where
from wire.knative.filters.cesql.tree import (
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Node,
    Unary,
    UnsignedInteger,
)

_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_OPERATORS = {"<>": "!="}

_STRINGS = frozenset({"SQ_STRING", "DQ_STRING"})
_INFIX = frozenset(
    {"EQ", "NE", "LTGT", "LE", "GE", "LT", "GT", "PLUS", "MINUS", "STAR", "SLASH", "PERCENT"}
    | {"AND", "OR", "XOR", "LIKE", "IN"}
)


class _Misplaced(Exception):
    """A token the grammar accepts but CESQL does not (a bad name): raised while building."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def parse_tree(text: str) -> Node:
    """The syntax tree of a CESQL expression; CesqlParseError says what is wrong and where."""
    if not text.strip():
        raise CesqlParseError("empty expression", line=1, column=1)
    try:
        # The transformer builds tree nodes while parsing, so the result is a Node.
        tree = cast(Node, _parser().parse(text))
    except _Misplaced as problem:
        raise _error(text, problem.message, problem.offset) from None
    except VisitError as failure:
        if isinstance(failure.orig_exc, _Misplaced):
            raise _error(text, failure.orig_exc.message, failure.orig_exc.offset) from None
        raise
    except UnexpectedCharacters as failure:
        offset = failure.pos_in_stream or 0
        raise _error(text, _unexpected_character(text, offset), offset) from None
    except UnexpectedToken as failure:
        token = failure.token
        offset = len(text) if token.type == "$END" else _at(token)
        hint = _expected(set(failure.accepts or failure.expected))
        raise _error(text, _describe(token), offset, hint) from None
    except LarkError as failure:  # any other grammar-level refusal
        raise _error(text, f"invalid expression: {failure}", 0) from None
    return tree


def _error(text: str, what: str, offset: int, hint: str = "") -> CesqlParseError:
    line, column = position(text, offset)
    message = f"{what} at {where(text, offset)}" + (f"; expected {hint}" if hint else "")
    return CesqlParseError(message, line=line, column=column)


def _unexpected_character(text: str, offset: int) -> str:
    char = text[offset]
    if char in "'\"":
        return "unterminated string literal"
    return f"unexpected character {char!r}"


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "unexpected end of expression"
    if token.type == "NAME":
        return f"unexpected name {token.value!r}"
    if token.type == "INT":
        return f"unexpected number {token.value}"
    if token.type in _STRINGS:
        return f"unexpected string literal {token.value}"
    if token.type.isalpha() and token.value.isalpha():
        return f"unexpected keyword {token.value.upper()}"
    return f"unexpected {token.value!r}"


def _expected(expected: set[str]) -> str:
    """What the parser would have accepted, in words."""
    if "INT" in expected:
        wanted = ["an expression"]
        if "RPAR" in expected:
            wanted.append("')'")
        return " or ".join(wanted)
    if expected and expected <= _STRINGS:
        return "a quoted string (the pattern of LIKE is a string literal)"
    if expected == {"NAME"}:
        return "an attribute name"
    if expected == {"LPAR"}:
        return "'('"
    if expected == {"LIKE", "IN"}:
        return "LIKE or IN"
    wanted = []
    if expected & _INFIX:
        wanted.append("an operator")
    if "COMMA" in expected:
        wanted.append("','")
    if "RPAR" in expected:
        wanted.append("')'")
    if "$END" in expected:
        wanted.append("the end of the expression")
    return " or ".join(wanted)


def _unquote(token: Token) -> str:
    quote = token.value[0]
    inner: str = token.value[1:-1]
    return _ESCAPE.sub(lambda m: quote if m.group(1) == quote else m.group(0), inner)


class _TreeBuilder(Transformer[Token, Node]):
    """Builds tree nodes while Lark reduces (no intermediate parse tree)."""

    def integer(self, children: list[Token]) -> Literal:
        (token,) = children
        return UnsignedInteger(int(token.value), _at(token))

    def signed_integer(self, children: list[Token]) -> Literal:
        plus, token = children
        return Literal(int(token.value), _at(plus))

    def string(self, children: list[Token]) -> Literal:
        (token,) = children
        return Literal(_unquote(token), _at(token))

    def boolean(self, children: list[Token]) -> Literal:
        (token,) = children
        return Literal(token.type == "TRUE", _at(token))

    def attribute(self, children: list[Token]) -> Attribute:
        (token,) = children
        return Attribute(_attribute_name(token), _at(token))

    def exists(self, children: list[Token]) -> Exists:
        keyword, token = children
        return Exists(_attribute_name(token), _at(keyword))

    def call(self, children: list[Token | list[Node]]) -> Call:
        token = children[0]
        assert isinstance(token, Token)
        if not _FUNCTION_NAME.fullmatch(token.value):
            raise _Misplaced(
                f"invalid function name {token.value!r}: letters and '_' only", _at(token)
            )
        args = children[1] if len(children) > 1 else []
        assert isinstance(args, list)
        return Call(token.value.upper(), tuple(args), _at(token))

    def items(self, children: list[Node]) -> list[Node]:
        return list(children)

    def unary(self, children: list[Token | Node]) -> Node:
        token, operand = children
        assert isinstance(token, Token)
        assert not isinstance(operand, Token)
        if token.type == "MINUS" and type(operand) is UnsignedInteger:
            return Literal(-int(operand.value), _at(token))
        return Unary(token.value.upper(), operand, _at(token))

    def binary(self, children: list[Token | Node]) -> Binary:
        left, token, right = children
        assert isinstance(token, Token)
        assert not isinstance(left, Token)
        assert not isinstance(right, Token)
        op = token.value.upper()
        return Binary(_OPERATORS.get(op, op), left, right, _at(token))

    def like(self, children: list[Token | Node]) -> Like:
        operand, *keywords, pattern = children
        assert not isinstance(operand, Token)
        assert isinstance(pattern, Literal)
        assert isinstance(keywords[0], Token)
        return Like(operand, str(pattern.value), len(keywords) == 2, _at(keywords[0]))

    def in_set(self, children: list[Token | Node | list[Node]]) -> In:
        operand, *keywords, items = children
        assert not isinstance(operand, Token | list)
        assert isinstance(items, list)
        assert isinstance(keywords[0], Token)
        return In(operand, tuple(items), len(keywords) == 2, _at(keywords[0]))


def _at(token: Token) -> int:
    return token.start_pos or 0


def _attribute_name(token: Token) -> str:
    if not _ATTRIBUTE_NAME.fullmatch(token.value):
        raise _Misplaced(
            f"invalid attribute name {token.value!r}: attribute names are letters and digits",
            _at(token),
        )
    return str(token.value).lower()


@functools.cache
def _parser() -> Lark:
    grammar = files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_TreeBuilder())
