"""CESQL evaluation beyond the TCK: 32-bit arithmetic, casts, the error model, functions."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.knative.filters.cesql import CesqlError, ErrorKind, Evaluation, Value, parse

EVENT: dict[str, Value] = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def run(expression: str, event: dict[str, Value] | None = None) -> tuple[Value, list[str]]:
    evaluation = parse(expression).evaluate(EVENT if event is None else event)
    return evaluation.value, [error.kind for error in evaluation.errors]


@pytest.mark.parametrize(
    ("expression", "value", "errors"),
    [
        ("2147483647 + 1", 2147483647, ["math"]),
        ("-2147483648 - 1", -2147483648, ["math"]),
        ("65536 * 65536", 2147483647, ["math"]),
        ("65536 * -65536", -2147483648, ["math"]),
        ("-2147483648 / -1", 2147483647, ["math"]),
        ("-2147483648 % -1", 0, []),
        ("-(-2147483648)", 2147483647, ["math"]),
        ("ABS(-2147483647)", 2147483647, []),
        ("2147483647 + 1 - 1", 0, ["math"]),
    ],
)
def test_integer_overflow_is_a_math_error_with_the_nearest_32_bit_value(
    expression: str, value: int, errors: list[str]
) -> None:
    assert run(expression) == (value, errors)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("-7 / 2", -3), ("7 / -2", -3), ("-7 % 2", -1), ("7 % -2", 1), ("-7 % -2", -1)],
)
def test_division_truncates_and_the_remainder_keeps_the_dividend_sign(
    expression: str, value: int
) -> None:
    assert run(expression) == (value, [])


@given(INT32, INT32, st.sampled_from(["+", "-", "*", "/", "%"]))
def test_arithmetic_agrees_with_exact_integers_kept_in_32_bits(x: int, y: int, op: str) -> None:
    with localcontext() as decimal:
        decimal.prec = 40
        exact = {
            "+": Decimal(x) + y,
            "-": Decimal(x) - y,
            "*": Decimal(x) * y,
            "/": (Decimal(x) / y).to_integral_value("ROUND_DOWN") if y else Decimal(0),
            "%": Decimal(x) % y if y else Decimal(0),
        }[op]
    evaluation = parse(f"{x} {op} {y}").evaluate(EVENT)
    in_range = -(2**31) <= exact <= 2**31 - 1
    if y == 0 and op in "/%":
        assert (evaluation.value, _kinds(evaluation)) == (0, ["math"])
    elif in_range:
        assert (evaluation.value, _kinds(evaluation)) == (int(exact), [])
    else:
        bound = 2**31 - 1 if exact > 0 else -(2**31)
        assert (evaluation.value, _kinds(evaluation)) == (bound, ["math"])


def _kinds(evaluation: Evaluation) -> list[str]:
    return [error.kind for error in evaluation.errors]


@pytest.mark.parametrize(
    ("expression", "value", "errors"),
    [
        ("'+5' + 0", 5, []),
        ("'-0005' + 0", -5, []),
        ("'2147483648' + 0", 0, ["cast"]),
        ("' 5' + 0", 0, ["cast"]),
        ("'1_000' + 0", 0, ["cast"]),
        ("'٣' + 0", 0, ["cast"]),
        ("'1.5' + 0", 0, ["cast"]),
        ("'TRUE' AND TRUE", True, []),
        ("'yes' AND TRUE", False, ["cast"]),
        ("1 AND TRUE", False, ["cast"]),
        ("TRUE + TRUE", 2, []),
        ("5 = '5'", True, []),
        ("'5' = 5", True, []),
        ("'05' = 5", True, []),
        ("5 = '05'", False, []),
        ("'abc' = 5", False, ["cast"]),
        ("'abc' < 'abd'", False, ["cast", "cast"]),
        ("BOOL(0) OR BOOL(-1)", True, []),
        ("BOOL('False')", False, []),
        ("INT(TRUE) + INT('-3')", -2, []),
        ("STRING(-12) = '-12'", True, []),
        ("IS_INT('12') AND IS_INT(TRUE) AND NOT IS_INT('1.5')", True, []),
        ("IS_BOOL('TrUe') AND IS_BOOL(1) AND NOT IS_BOOL('yes')", True, []),
    ],
)
def test_casts(expression: str, value: Value, errors: list[str]) -> None:
    assert run(expression) == (value, errors)


@pytest.mark.parametrize(
    ("expression", "value", "errors"),
    [
        # An operator whose operand failed answers its own zero value ...
        ("(1 / 0) + 5", 0, ["math"]),
        ("LENGTH(missing)", 0, ["missingAttribute"]),
        ("UPPER(missing)", "", ["missingAttribute"]),
        ("missing IN ('a')", False, ["missingAttribute"]),
        ("missing NOT IN ('a')", False, ["missingAttribute"]),
        ("missing NOT LIKE 'a'", False, ["missingAttribute"]),
        ("'a' IN (missing, 'a')", False, ["missingAttribute"]),
        # ... evaluation goes on and collects every error ...
        ("missing XOR (1 / 0 = 0)", False, ["missingAttribute", "math"]),
        ("missing OR TRUE", False, ["missingAttribute"]),
        ("missing OR other", False, ["missingAttribute", "missingAttribute"]),
        ("CONCAT(missing, 1 / 0)", "", ["missingAttribute", "math"]),
        # ... but AND and OR short-circuit before an error can happen.
        ("FALSE AND missing", False, []),
        ("TRUE OR missing", True, []),
        ("'a' IN ('a', missing)", True, []),
        # A failed cast at the operator itself does not stop it computing.
        ("5 / 'x'", 0, ["cast", "math"]),
        ("1 IN ('abc', 1)", True, ["cast"]),
    ],
)
def test_errors_give_zero_values_and_do_not_stop_evaluation(
    expression: str, value: Value, errors: list[str]
) -> None:
    assert run(expression) == (value, errors)


def test_a_failing_constant_subexpression_reports_its_error_on_every_evaluation() -> None:
    expression = parse("1 / 0 = 0")
    for _ in range(2):
        assert _kinds(expression.evaluate(EVENT)) == ["math"]


def test_errors_say_what_and_where() -> None:
    evaluation = parse("type = 't' AND myext = 'x'").evaluate(EVENT)
    assert evaluation == Evaluation(
        False,
        (
            CesqlError(
                ErrorKind.MISSING_ATTRIBUTE, "the event has no attribute 'myext' (column 22)"
            ),
        ),
    )
    assert str(evaluation.errors[0]).startswith("missingAttribute: the event has no attribute")


def test_an_evaluation_is_frozen() -> None:
    evaluation = parse("TRUE").evaluate(EVENT)
    with pytest.raises(AttributeError):
        evaluation.value = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "event", "value"),
    [
        ("myint = 10", {"myint": 10}, True),
        ("myint = '10'", {"myint": 10}, True),
        ("myint + 1", {"myint": 10}, 11),
        ("myint > 5", {"myint": "10"}, True),
        ("myint LIKE '1_'", {"myint": 10}, True),
        ("mybool = TRUE", {"mybool": True}, True),
        ("mybool = 'true'", {"mybool": True}, True),
        ("mybool", {"mybool": True}, True),
        ("mybool = TRUE", {"mybool": "TRUE"}, True),
        ("myext IN (5, '10')", {"myext": 10}, True),
        ("myext IN (FALSE, 'TRUE')", {"myext": True}, True),
        ("myext IN ('a', 10, TRUE)", {"myext": "true"}, True),
        ("myext IN ('true')", {"myext": False}, False),
        ("myext", {"myext": "x"}, "x"),
    ],
)
def test_structured_and_binary_attribute_values(
    expression: str, event: dict[str, Value], value: Value
) -> None:
    evaluation = parse(expression).evaluate(event)
    assert (evaluation.value, evaluation.errors) == (value, ())


@given(st.sampled_from(["a", "10", "true", "TRUE", "x y", ""]) | INT32 | st.booleans())
def test_in_over_literals_agrees_with_in_over_attributes(value: Value) -> None:
    literals = parse("x IN ('a', 10, TRUE, 'x y')").evaluate({"x": value})
    event: dict[str, Value] = {"x": value, "a": "a", "b": 10, "c": True, "d": "x y"}
    attributes = parse("x IN (a, b, c, d)").evaluate(event)
    assert (literals.value, _kinds(literals)) == (attributes.value, _kinds(attributes))


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("TRUE", True),
        ("type = 't'", True),
        ("'true'", False),
        ("1", False),
        ("NOT 10", False),
        ("missing OR TRUE", False),
    ],
)
def test_matches_needs_boolean_true_without_errors(expression: str, matches: bool) -> None:
    assert parse(expression).matches(EVENT) is matches


@pytest.mark.parametrize(
    ("expression", "value", "errors"),
    [
        ("LENGTH('日本語')", 3, []),
        ("LENGTH('👍')", 1, []),
        ("UPPER('straße')", "STRASSE", []),
        ("LOWER('ÀÉÎ')", "àéî", []),
        ("TRIM('\u3000\u00a0 a b \u2003\n')", "a b", []),
        ("TRIM('\x1fa\x1f')", "\x1fa\x1f", []),
        ("CONCAT(1, TRUE, 'x')", "1truex", []),
        ("CONCAT_WS('-', 'a', 2)", "a-2", []),
        ("LEFT('abc', 0) = '' AND RIGHT('abc', 0) = ''", True, []),
        ("RIGHT('日本語', 2)", "本語", []),
        ("SUBSTRING('', 0)", "", []),
        ("SUBSTRING('', 1)", "", ["functionEvaluation"]),
        ("SUBSTRING('abc', 3)", "c", []),
        ("SUBSTRING('abc', -3)", "abc", []),
        ("SUBSTRING('abc', 2, 0)", "", []),
        ("SUBSTRING('abc', 1, -1)", "", ["functionEvaluation"]),
        ("SUBSTRING('日本語', -2, 1)", "本", []),
        ("LEFT('abc', 'x')", "", ["cast"]),
        ("LENGTH()", False, ["missingFunction"]),
        ("SUBSTRING('abc')", False, ["missingFunction"]),
        ("ABS(1, 2)", False, ["missingFunction"]),
    ],
)
def test_functions(expression: str, value: Value, errors: list[str]) -> None:
    assert run(expression) == (value, errors)
