"""CESQL evaluation errors in full: the kind, what went wrong, and where in the expression."""

from __future__ import annotations

import pytest

from wire.knative.filters.cesql import CesqlParseError, Value, parse

EVENT: dict[str, Value] = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "n": "x"}
EVENT |= {"i": 7, "b": True}
NOT_BOOLEAN = "cast: cannot cast 'a' to Boolean: not 'true' or 'false'"
NOT_INTEGER = "cast: cannot cast 'a' to Integer: it is not a base-10 integer"


@pytest.mark.parametrize(
    ("expression", "value", "error"),
    [
        ("missing", False, "missingAttribute: the event has no attribute 'missing' (column 1)"),
        # `attribute LIKE pattern` and `attribute = constant` are compiled to one step each, whose
        # errors name the operator's column rather than the attribute's.
        (
            "missing LIKE 'a%'",
            False,
            "missingAttribute: the event has no attribute 'missing' (column 9)",
        ),
        (
            "missing = 'x'",
            False,
            "missingAttribute: the event has no attribute 'missing' (column 9)",
        ),
        (
            "TRUE AND\n  missing",
            False,
            "missingAttribute: the event has no attribute 'missing' (line 2, column 3)",
        ),
        (
            "missing AND\nTRUE",
            False,
            "missingAttribute: the event has no attribute 'missing' (line 1, column 1)",
        ),
        (
            "TRUE AND\nTRUE AND\n  missing",
            False,
            "missingAttribute: the event has no attribute 'missing' (line 3, column 3)",
        ),
        (
            "\nmissing",
            False,
            "missingAttribute: the event has no attribute 'missing' (line 2, column 1)",
        ),
        (
            "n = 5",
            False,
            "cast: cannot cast 'x' to Integer: it is not a base-10 integer (column 3)",
        ),
        ("n = TRUE", False, "cast: cannot cast 'x' to Boolean: not 'true' or 'false' (column 3)"),
        ("'a' = 1", False, f"{NOT_INTEGER} (column 5)"),
        (
            "i = TRUE",
            False,
            "cast: cannot cast Integer 7 to Boolean implicitly; use BOOL(x) (column 3)",
        ),
        ("'a' AND TRUE", False, f"{NOT_BOOLEAN} (column 5)"),
        ("TRUE AND 'a'", False, f"{NOT_BOOLEAN} (column 6)"),
        ("'a' OR FALSE", False, f"{NOT_BOOLEAN} (column 5)"),
        ("FALSE OR 'a'", False, f"{NOT_BOOLEAN} (column 7)"),
        ("'a' XOR TRUE", True, f"{NOT_BOOLEAN} (column 5)"),
        ("TRUE XOR 'a'", True, f"{NOT_BOOLEAN} (column 6)"),
        ("NOT 'a'", True, f"{NOT_BOOLEAN} (column 1)"),
        ("-'a'", 0, f"{NOT_INTEGER} (column 1)"),
        ("'a' < 1", True, f"{NOT_INTEGER} (column 5)"),
        ("1 < 'a'", False, f"{NOT_INTEGER} (column 3)"),
        ("'a' + 1", 1, f"{NOT_INTEGER} (column 5)"),
        ("1 + 'a'", 1, f"{NOT_INTEGER} (column 3)"),
        ("1 / 0", 0, "math: division by zero (column 3)"),
        ("1 % 0", 0, "math: modulo by zero (column 3)"),
        ("(1 / 0) IN (1)", False, "math: division by zero (column 4)"),
        (
            "i IN ('x', 2)",
            False,
            "cast: cannot cast 'x' to Integer: it is not a base-10 integer (column 3)",
        ),
        (
            "b IN (1)",
            False,
            "cast: cannot cast Integer 1 to Boolean implicitly; use BOOL(x) (column 3)",
        ),
        (
            "ABS(-2147483648)",
            2147483647,
            "math: ABS: -2147483648 has no 32-bit absolute (column 1)",
        ),
        ("BOOL('x')", False, "cast: cannot cast 'x' to Boolean: not 'true' or 'false' (column 1)"),
        ("INT('x')", 0, "cast: cannot cast 'x' to Integer: it is not a base-10 integer (column 1)"),
        (
            "INT('2147483648')",
            0,
            "cast: cannot cast '2147483648' to Integer: it is outside the 32-bit range (column 1)",
        ),
        (
            "LEFT('abc', -1)",
            "abc",
            "functionEvaluation: LEFT: the length must not be negative, got -1 (column 1)",
        ),
        (
            "RIGHT('abc', -1)",
            "abc",
            "functionEvaluation: RIGHT: the length must not be negative, got -1 (column 1)",
        ),
        (
            "SUBSTRING('abc', 9)",
            "",
            "functionEvaluation: SUBSTRING: position 9 is outside a string of 3 (column 1)",
        ),
        (
            "SUBSTRING('abc', 1, -1)",
            "",
            "functionEvaluation: SUBSTRING: the length must not be negative, got -1 (column 1)",
        ),
        (
            "NOPE(1)",
            False,
            "missingFunction: there is no function NOPE taking 1 argument(s) (column 1)",
        ),
        (
            "2147483647 + 1",
            2147483647,
            "math: integer overflow: 2147483648 is outside the 32-bit range (column 12)",
        ),
        (
            "-2147483648 - 1",
            -2147483648,
            "math: integer overflow: -2147483649 is outside the 32-bit range (column 13)",
        ),
        (
            "-2147483648 / -1",
            2147483647,
            "math: integer overflow: 2147483648 is outside the 32-bit range (column 13)",
        ),
        (
            "'2147483648' + 0",
            0,
            "cast: cannot cast '2147483648' to Integer: it is outside the 32-bit range (column 14)",
        ),
        (
            "'-2147483649' + 0",
            0,
            "cast: cannot cast '-2147483649' to Integer: it is outside the 32-bit range"
            " (column 15)",
        ),
    ],
)
def test_an_error_says_its_kind_what_went_wrong_and_where(
    expression: str, value: Value, error: str
) -> None:
    evaluation = parse(expression).evaluate(EVENT)
    assert (evaluation.value, [str(e) for e in evaluation.errors]) == (value, [error])


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2147483646 + 1", 2147483647),
        ("-2147483647 - 1", -2147483648),
        ("'2147483647' + 0", 2147483647),
        ("'-2147483648' + 0", -2147483648),
        ("-7 / 2", -3),  # integer division truncates toward zero
        ("7 / -2", -3),
        ("-7 % 2", -1),  # the remainder has the sign of the dividend
        ("7 % -2", 1),
        ("RIGHT('abc', 2)", "bc"),
        ("RIGHT('abc', 3)", "abc"),
        ("RIGHT('abc', 5)", "abc"),
        ("SUBSTRING('abc', 2)", "bc"),
        ("SUBSTRING('abc', 2, 1)", "b"),
        ("SUBSTRING('abc', -1)", "c"),
        ("SUBSTRING('abc', 0)", ""),  # position 0 is the empty string (CESQL 1.0)
        ("i = i", True),
        ("n = type", False),
        ("TRUE XOR b", False),
        ("b XOR FALSE", True),
        ("b AND b", True),
        ("b OR b", True),
        ("NOT b", False),
        ("-i", -7),
        ("i < i", False),
        ("i + i", 14),
        ("n IN (type, 'x')", True),
        ("i IN (i)", True),
        ("i IN ('7')", True),
        ("'t' IN (type)", True),
        # LIKE: a middle segment is looked for after the head and before the tail, never in them
        ("'abc' LIKE 'ab%b%c'", False),
        ("'ab' LIKE 'a%b%b'", False),
        ("'abb' LIKE 'a%b_%b'", False),
        ("'abxb' LIKE 'a%b_%b'", True),
        ("'\\X' LIKE '\\X'", True),  # a backslash escapes only % and _
        ("'X' LIKE '\\X'", False),
        ("SUBSTRING('abc', 1)", "abc"),
        ("SUBSTRING('abc', 3, 1)", "c"),
        ("LEFT('abc', 2)", "ab"),
        # EXISTS of a present attribute, under each operator: nothing that reads the event is
        # folded into a constant when the expression is compiled
        ("NOT EXISTS i", False),
        ("-INT(EXISTS i)", -1),
        ("EXISTS i AND TRUE", True),
        ("(EXISTS i) IN (TRUE)", True),
        ("(EXISTS i) LIKE 'true'", True),
        ("1 = 'a'", False),  # the left operand takes the right's type: '1' = 'a'
        ("'a' IN (1, 2)", False),
    ],
)
def test_values_at_the_edges_have_no_error(expression: str, value: Value) -> None:
    evaluation = parse(expression).evaluate(EVENT)
    assert (evaluation.value, evaluation.errors) == (value, ())


@pytest.mark.parametrize(
    ("expression", "message", "line", "column"),
    [
        ("type =", "unexpected end of expression at column 7; expected an expression", 1, 7),
        (
            "TRUE AND\n(",
            "unexpected end of expression at line 2, column 2; expected an expression",
            2,
            2,
        ),
        ("'abc", "unterminated string literal at column 1", 1, 1),
        ('"abc', "unterminated string literal at column 1", 1, 1),
        ("", "empty expression", 1, 1),
        ("a = #", "unexpected character '#' at column 5", 1, 5),
        (
            "true true",
            "unexpected keyword TRUE at column 6;"
            " expected an operator or the end of the expression",
            1,
            6,
        ),
        (
            "a LIKE 1",
            "unexpected number 1 at column 8;"
            " expected a quoted string (the pattern of LIKE is a string literal)",
            1,
            8,
        ),
        ("a IN (1 2)", "unexpected number 2 at column 9; expected an operator or ',' or ')'", 1, 9),
        ("(a", "unexpected end of expression at column 3; expected an operator or ')'", 1, 3),
        ("a IN 1", "unexpected number 1 at column 6; expected '('", 1, 6),
        ("EXISTS 1", "unexpected number 1 at column 8; expected an attribute name", 1, 8),
    ],
)
def test_a_parse_error_says_what_and_at_which_line_and_column(
    expression: str, message: str, line: int, column: int
) -> None:
    with pytest.raises(CesqlParseError) as refused:
        parse(expression)
    assert (refused.value.message, refused.value.line, refused.value.column) == (
        message,
        line,
        column,
    )
