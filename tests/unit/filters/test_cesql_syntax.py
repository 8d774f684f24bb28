"""CESQL syntax beyond the TCK: precedence, keywords and names, literals, parse error messages."""

from __future__ import annotations

import pytest

from wire.knative.filters.cesql import CesqlParseError, Value, parse

EVENT: dict[str, Value] = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def value_of(expression: str, event: dict[str, Value] | None = None) -> Value:
    evaluation = parse(expression).evaluate(EVENT if event is None else event)
    assert evaluation.errors == ()
    return evaluation.value


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("8 / 2 / 2", 2),
        ("2 * 3 % 4", 2),
        ("- 1 + 2", 1),
        ("-(1 + 2)", -3),
        ("5-3", 2),
        ("1 + +2", 3),
        ("1 < 2 = TRUE", True),
        ("'abc' LIKE 'a%' = TRUE", True),
        ("TRUE = 'abc' LIKE 'a%'", True),
        ("1 IN (1) AND 2 IN (3)", False),
        ("1 + 2 IN (3)", 1),
        ("NOT TRUE = FALSE", True),
        ("NOT NOT TRUE", True),
        ("EXISTS id AND NOT EXISTS subject", True),
    ],
)
def test_operators_bind_in_the_spec_precedence_order(expression: str, expected: Value) -> None:
    assert value_of(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # One level for AND, OR and XOR, evaluated left to right (spec 3.6), not SQL's AND-first.
        ("TRUE OR TRUE AND FALSE", False),
        ("FALSE AND TRUE OR TRUE", True),
        ("TRUE XOR TRUE OR TRUE", True),
        ("TRUE OR (TRUE AND FALSE)", True),
    ],
)
def test_and_or_xor_share_one_level_from_left_to_right(expression: str, expected: bool) -> None:
    assert value_of(expression) is expected


def test_not_binds_tighter_than_like_so_negate_with_not_like() -> None:
    evaluation = parse("NOT type LIKE 't%'").evaluate(EVENT)
    assert evaluation.value is False
    assert [error.kind for error in evaluation.errors] == ["cast"]
    assert value_of("type NOT LIKE 'x%'") is True


@pytest.mark.parametrize("keyword", ["and", "AND", "And", "aNd"])
def test_keywords_are_case_insensitive(keyword: str) -> None:
    assert value_of(f"TRUE {keyword} true") is True


@pytest.mark.parametrize(
    "name", ["index", "notify", "android", "orders", "trueish", "existsx", "in2"]
)
def test_names_that_start_with_a_keyword_are_attributes(name: str) -> None:
    assert value_of(f"{name} = 'v'", {name: "v"}) is True


def test_attribute_names_are_looked_up_in_lower_case() -> None:
    assert value_of("TYPE = 't' AND Source = '/s' AND EXISTS SPECVERSION") is True


def test_attribute_names_may_start_with_a_digit() -> None:
    assert value_of("1st = 'x'", {"1st": "x"}) is True


def test_function_names_are_case_insensitive() -> None:
    assert value_of("length('ab') + Length('c') + LENGTH('d')") == 4


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("+5", 5),
        ("007", 7),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'a\nb'", "a\\nb"),
        (r"'back\\slash'", "back\\\\slash"),
        ("'single \" inside'", 'single " inside'),
        ('"double \' inside"', "double ' inside"),
        ("'日本語'", "日本語"),
        ("''", ""),
        ("'line\nbreak'", "line\nbreak"),
    ],
)
def test_literals(expression: str, expected: Value) -> None:
    assert value_of(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message", "column"),
    [
        ("ABC(", "unexpected end of expression at column 5; expected an expression or ')'", 5),
        ("x LIKE 123", "unexpected number 123 at column 8; expected a quoted string", 8),
        ("type LIKE source", "unexpected name 'source' at column 11; expected a quoted string", 11),
        ("'abc", "unterminated string literal at column 1", 1),
        ("a = 'it''s'", "unexpected string literal 's' at column 9", 9),
        ("a ! b", "unexpected character '!' at column 3", 3),
        ("a b", "unexpected name 'b' at column 3; expected an operator or the end", 3),
        ("x IN 1", "unexpected number 1 at column 6; expected '('", 6),
        ("x IN ()", "unexpected ')' at column 7; expected an expression", 7),
        ("x NOT 5", "unexpected number 5 at column 7; expected LIKE or IN", 7),
        ("EXISTS 5", "unexpected number 5 at column 8; expected an attribute name", 8),
        ("(1 + 2", "unexpected end of expression at column 7; expected an operator or ')'", 7),
        ("my_ext = 1", "invalid attribute name 'my_ext'", 1),
        ("F1(x)", "invalid function name 'F1'", 1),
        ("2147483648", "integer literal 2147483648 is outside the 32-bit range at column 1", 1),
        ("1 + -2147483649", "integer literal -2147483649 is outside the 32-bit range", 5),
        ("+2147483648", "integer literal 2147483648 is outside the 32-bit range", 1),
        ("", "empty expression", 1),
        ("  \n ", "empty expression", 1),
    ],
)
def test_parse_errors_say_what_and_at_which_column(
    expression: str, message: str, column: int
) -> None:
    with pytest.raises(CesqlParseError) as raised:
        parse(expression)
    assert str(raised.value).startswith(message)
    assert raised.value.column == column
    assert raised.value.kind == "parse"


def test_parse_errors_name_the_line_in_a_multi_line_expression() -> None:
    with pytest.raises(CesqlParseError) as raised:
        parse("type = 't'\n  AND = 2")
    assert str(raised.value).startswith("unexpected '=' at line 2, column 7")
    assert (raised.value.line, raised.value.column) == (2, 7)


def test_a_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unexpected"):
        parse("1 +")


def test_an_unknown_function_parses_and_fails_when_evaluated() -> None:
    evaluation = parse("NOPE(1) OR TRUE").evaluate(EVENT)
    assert evaluation.value is False
    assert [error.kind for error in evaluation.errors] == ["missingFunction"]


def test_an_expression_keeps_its_text_and_compares_by_it() -> None:
    assert parse("type = 't'") == parse("type = 't'")
    assert parse("type = 't'").text == "type = 't'"
