"""Syntax tree to evaluator: each node becomes a closure, once, when the expression is parsed.

Subtrees made only of literals are evaluated here and replaced by their value when that
raises no error (`LOWER('ABC')`, `-'10'`); a subtree that fails, like `1 / 0`, is kept so that
every evaluation reports its error.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.knative.filters.cesql import operators
from wire.knative.filters.cesql.errors import (
    CesqlError,
    CesqlParseError,
    ErrorKind,
    position,
    where,
)
from wire.knative.filters.cesql.functions import resolve
from wire.knative.filters.cesql.like import compile_like
from wire.knative.filters.cesql.operators import Evaluator, Event, cast_like
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
)
from wire.knative.filters.cesql.values import INT32_MAX, INT32_MIN, Value, to_string

_NO_EVENT: Event = {}


@dataclass(frozen=True, slots=True)
class Compiled:
    """A node's evaluator, and what the parent may exploit: a constant value, a plain attribute."""

    run: Evaluator
    constant: bool = False
    value: Value = False
    attribute: str | None = None


def compile_tree(tree: Node, text: str) -> Evaluator:
    """The evaluator of a whole expression; a literal outside 32 bits is a CesqlParseError."""
    return _Compiler(text).node(tree).run


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text

    def where(self, node: Node) -> str:
        return where(self.text, node.offset)

    def node(self, node: Node) -> Compiled:
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, Attribute):
            run = operators.attribute(node.name, self.where(node))
            return Compiled(run, attribute=node.name)
        if isinstance(node, Exists):
            return Compiled(operators.exists(node.name))
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, In):
            return self.in_(node)
        return self.call(node)

    def literal(self, node: Literal) -> Compiled:
        value = node.value
        if type(value) is int and not INT32_MIN <= value <= INT32_MAX:
            line, column = position(self.text, node.offset)
            raise CesqlParseError(
                f"integer literal {value} is outside the 32-bit range at {self.where(node)}",
                line=line,
                column=column,
            )
        return _constant(value)

    def unary(self, node: Unary) -> Compiled:
        operand = self.node(node.operand)
        if node.op == "NOT":
            run = operators.not_(operand.run, self.where(node))
        else:
            run = operators.negate(operand.run, self.where(node))
        return _folded(run, operand)

    def binary(self, node: Binary) -> Compiled:
        left, right = self.node(node.left), self.node(node.right)
        op, at = node.op, self.where(node)
        if op in ("=", "!="):
            if left.attribute is not None and right.constant:
                return Compiled(
                    operators.attribute_equal(left.attribute, right.value, op == "!=", at)
                )
            run = operators.equal(left.run, right.run, op == "!=", at)
        elif op == "AND":
            run = operators.and_(left.run, right.run, at)
        elif op == "OR":
            run = operators.or_(left.run, right.run, at)
        elif op == "XOR":
            run = operators.xor(left.run, right.run, at)
        elif op in ("<", "<=", ">", ">="):
            run = operators.compare(left.run, right.run, op, at)
        else:
            run = operators.arithmetic(left.run, right.run, op, at)
        return _folded(run, left, right)

    def like(self, node: Like) -> Compiled:
        operand = self.node(node.operand)
        matcher = compile_like(node.pattern)
        if operand.attribute is not None:
            run = operators.attribute_like(
                operand.attribute, matcher, node.negated, self.where(node)
            )
            return Compiled(run)
        return _folded(operators.like(operand.run, matcher, node.negated), operand)

    def in_(self, node: In) -> Compiled:
        operand = self.node(node.operand)
        items = [self.node(item) for item in node.items]
        at = self.where(node)
        if all(item.constant for item in items):
            constants = tuple(item.value for item in items)
            run = operators.in_constants(
                operand.run, constants, _member_sets(constants, at), node.negated, at
            )
        else:
            run = operators.in_(operand.run, [item.run for item in items], node.negated, at)
        return _folded(run, operand, *items)

    def call(self, node: Call) -> Compiled:
        function = resolve(node.name, len(node.args))
        at = self.where(node)
        args = [self.node(arg) for arg in node.args]
        if function is None:
            missing = CesqlError(
                ErrorKind.MISSING_FUNCTION,
                f"there is no function {node.name} taking {len(node.args)} argument(s) ({at})",
            )

            def undispatched(event: Event, errors: list[CesqlError]) -> Value:
                errors.append(missing)
                return False

            return Compiled(undispatched)
        runs = [arg.run for arg in args]
        casts = [*function.params]
        casts += [function.variadic] * (len(args) - len(casts)) if function.variadic else []
        body, zero = function.body, function.zero

        def run(event: Event, errors: list[CesqlError]) -> Value:
            before = len(errors)
            values = [evaluate(event, errors) for evaluate in runs]
            if len(errors) != before:
                return zero
            values = [cast(value, errors, at) for cast, value in zip(casts, values, strict=True)]
            return body(values, errors, at)

        return _folded(run, *args)


def _constant(value: Value) -> Compiled:
    return Compiled(lambda event, errors: value, constant=True, value=value)


def _folded(run: Evaluator, *operands: Compiled) -> Compiled:
    """`run` itself, or its value when every operand is constant and evaluating raises no error."""
    if not all(operand.constant for operand in operands):
        return Compiled(run)
    errors: list[CesqlError] = []
    value = run(_NO_EVENT, errors)
    return Compiled(run) if errors else _constant(value)


def _member_sets(constants: tuple[Value, ...], where: str) -> dict[type, frozenset[Value]]:
    """For each operand type, the IN set's members cast to it, when every cast succeeds."""
    sets: dict[type, frozenset[Value]] = {str: frozenset(to_string(c) for c in constants)}
    for target in (0, False):
        errors: list[CesqlError] = []
        members = frozenset(cast_like(target, c, errors, where) for c in constants)
        if not errors:
            sets[type(target)] = members
    return sets
