"""JSON Schema as the edges apply it: ECMA-262 patterns and problems that never echo the input."""

from __future__ import annotations

import pytest
from jsonschema.exceptions import SchemaError

from kit.json_schema import Schema

CURRENCY = Schema(
    {
        "type": "object",
        "properties": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "additionalProperties": False,
    },
    what="the body",
)
NAME = Schema({"type": "string", "maxLength": 200})


@pytest.mark.parametrize("value", ["EUR\n", "EUR\r\n", "\nEUR", "EURO", "eur"])
def test_a_pattern_anchored_with_a_dollar_takes_no_final_newline(value: str) -> None:
    problem = CURRENCY.problem({"currency": value})
    assert problem is not None
    assert problem.field == "currency"
    assert problem.message == "'currency' must match ^[A-Z]{3}$"


def test_a_matching_value_has_no_problem() -> None:
    assert CURRENCY.problem({"currency": "EUR"}) is None


def test_a_long_value_is_described_without_repeating_it() -> None:
    problem = NAME.problem("x" * 100_000)
    assert problem is not None
    assert problem.message == "the document must be at most 200 characters"
    assert problem.limit == 200


def test_an_unknown_property_is_named_and_cut_short() -> None:
    problem = CURRENCY.problem({"k" * 10_000: 1})
    assert problem is not None
    assert problem.field is not None and len(problem.field) < 50
    assert len(problem.message) < 120
    assert problem.message.startswith("the body has no property 'kkkk")


def test_a_pattern_ecma_262_cannot_compile_fails_at_start() -> None:
    with pytest.raises(SchemaError, match="is not an ECMA-262 pattern"):
        Schema({"type": "string", "pattern": "(?P<name>x)"})
