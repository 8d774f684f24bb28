"""Knative Trigger filters: filter.attributes, the filters dialects, admission, user filters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.knative.filters import (
    FilterError,
    compile_filters,
    compile_trigger_filter,
    compile_user_filter,
)
from wire.knative.filters.cesql import Value, parse

EVENT: dict[str, Value] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/shop/orders",
    "type": "order.created",
    "subject": "",
    "region": "eu-west",
    "count": 10,
    "urgent": True,
}


def matches(spec: dict[str, Any], event: dict[str, Value] = EVENT) -> bool:
    return compile_trigger_filter(spec)(event)


def filters(*entries: Any) -> dict[str, Any]:
    return {"filters": list(entries)}


def refused(spec: dict[str, Any]) -> FilterError:
    with pytest.raises(FilterError) as raised:
        compile_trigger_filter(spec)
    return raised.value


# filter.attributes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"type": "order.created"}, True),
        ({"type": "order.created", "source": "/shop/orders"}, True),
        ({"type": "order.created", "source": "/elsewhere"}, False),
        ({"type": "Order.Created"}, False),
        ({"type": "order"}, False),
        ({"region": "eu-west"}, True),
        ({"region": ""}, True),
        ({"subject": ""}, False),
        ({"missing": ""}, False),
        ({"missing": "x"}, False),
        ({"count": "10"}, True),
        ({"count": "010"}, False),
        ({"urgent": "true"}, True),
        ({"urgent": "True"}, False),
        ({}, True),
    ],
)
def test_legacy_attributes_filter(attributes: dict[str, str], expected: bool) -> None:
    assert matches({"filter": {"attributes": attributes}}) is expected


@pytest.mark.parametrize("spec", [{}, {"filter": None}, {"filter": {}}, {"filters": []}])
def test_no_filter_matches_every_event(spec: dict[str, Any]) -> None:
    assert matches(spec) is True


# filters dialects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"exact": {"type": "order.created"}}, True),
        ({"exact": {"type": "order.create"}}, False),
        ({"exact": {"type": "ORDER.CREATED"}}, False),
        ({"exact": {"missing": "x"}}, False),
        ({"exact": {"count": "10"}}, True),
        ({"exact": {"urgent": "true"}}, True),
        ({"prefix": {"type": "order."}}, True),
        ({"prefix": {"type": "payment."}}, False),
        ({"prefix": {"count": "1"}}, True),
        ({"prefix": {"missing": "x"}}, False),
        ({"suffix": {"type": ".created"}}, True),
        ({"suffix": {"type": ".deleted"}}, False),
        ({"suffix": {"urgent": "rue"}}, True),
        ({"suffix": {"subject": "x"}}, False),
        # prefix and suffix are anchored: a value found elsewhere in the attribute does not match
        ({"prefix": {"type": "order.created"}}, True),
        ({"prefix": {"type": "created"}}, False),
        ({"prefix": {"source": "shop"}}, False),
        ({"prefix": {"count": "0"}}, False),
        ({"suffix": {"type": "order.created"}}, True),
        ({"suffix": {"type": "order"}}, False),
        ({"suffix": {"source": "/shop"}}, False),
        ({"suffix": {"urgent": "tru"}}, False),
        ({"cesql": "type = 'order.created' AND count > 5"}, True),
        ({"cesql": "type LIKE 'payment.%'"}, False),
        ({"cesql": "missing = 'x' OR TRUE"}, False),
        ({"cesql": "NOT 10"}, False),
        ({"cesql": "'true'"}, False),
        ({"cesql": "1 / 0 = 0"}, False),
        ({"not": {"exact": {"type": "order.created"}}}, False),
        ({"not": {"exact": {"type": "payment.done"}}}, True),
        ({"not": {"exact": {"missing": "x"}}}, True),
        ({"all": [{"prefix": {"type": "order."}}, {"exact": {"region": "eu-west"}}]}, True),
        ({"all": [{"prefix": {"type": "order."}}, {"exact": {"region": "us"}}]}, False),
        ({"any": [{"prefix": {"type": "payment."}}, {"exact": {"region": "eu-west"}}]}, True),
        ({"any": [{"prefix": {"type": "payment."}}, {"exact": {"region": "us"}}]}, False),
        ({"not": {"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}]}}, True),
    ],
)
def test_filters_dialects(entry: dict[str, Any], expected: bool) -> None:
    assert matches(filters(entry)) is expected


def test_every_filters_entry_must_hold() -> None:
    both = filters({"prefix": {"type": "order."}}, {"suffix": {"source": "/orders"}})
    assert matches(both) is True
    assert matches(filters({"prefix": {"type": "order."}}, {"cesql": "FALSE"})) is False


def test_filters_replace_filter_when_not_empty() -> None:
    spec = {"filter": {"attributes": {"type": "nope"}}, "filters": [{"exact": {"id": "e-1"}}]}
    assert matches(spec) is True
    assert matches({**spec, "filters": []}) is False


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"exact": {}},
        {"any": []},
        {"all": []},
        {"cesql": ""},
        {"exact": {"type": ""}},
        {"prefix": {"type": ""}},
        {"not": {"any": []}},
        {"not": {}},
        {"any": [{"exact": {"type": ""}}]},
    ],
)
def test_knative_skips_empty_filters_so_they_match_every_event(entry: dict[str, Any]) -> None:
    assert matches(filters(entry)) is True
    assert matches(filters(entry, {"exact": {"type": "nope"}})) is False


def test_an_empty_filters_entry_still_replaces_filter() -> None:
    assert matches({"filter": {"attributes": {"type": "nope"}}, "filters": [{}]}) is True


def test_any_answers_its_last_filter_when_none_passes_as_knative_does() -> None:
    fails = {"exact": {"type": "nope"}}
    nothing = {"not": {}}  # Knative's "no filter" result, which lets the event through
    assert matches(filters({"any": [fails, nothing]})) is True
    assert matches(filters({"any": [nothing, fails]})) is False


@given(st.text(st.characters(exclude_characters="\\'%_"), max_size=6), st.text(max_size=8))
def test_prefix_agrees_with_cesql_like(prefix: str, value: str) -> None:
    event: dict[str, Value] = {"myext": value}
    dialect = compile_filters([{"prefix": {"myext": prefix}}])(event)
    cesql = parse(f"myext LIKE '{prefix}%'").matches(event)
    assert dialect is (cesql if prefix else True)


@given(st.text(st.characters(exclude_characters="\\'%_"), max_size=6), st.text(max_size=8))
def test_suffix_agrees_with_cesql_like(suffix: str, value: str) -> None:
    event: dict[str, Value] = {"myext": value}
    dialect = compile_filters([{"suffix": {"myext": suffix}}])(event)
    cesql = parse(f"myext LIKE '%{suffix}'").matches(event)
    assert dialect is (cesql if suffix else True)


@pytest.mark.parametrize(
    ("dialect", "wanted", "value", "expected"),
    [
        ("prefix", "ab", "abc", True),
        ("prefix", "bc", "abc", False),
        ("prefix", "b", "abc", False),
        ("prefix", "abcd", "abc", False),
        ("suffix", "bc", "abc", True),
        ("suffix", "ab", "abc", False),
        ("suffix", "b", "abc", False),
        ("suffix", "zabc", "abc", False),
    ],
)
def test_prefix_and_suffix_hold_only_at_their_end_of_the_value(
    dialect: str, wanted: str, value: str, expected: bool
) -> None:
    assert compile_filters([{dialect: {"myext": wanted}}])({"myext": value}) is expected


# admission -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ("nope", "spec", "must be an object"),
        (filters({"exact": {"a": "1"}, "prefix": {"b": "2"}}), "spec.filters[0]", "multiple"),
        (filters({"exact": {"a": "1"}, "cesql": "TRUE"}), "spec.filters[0]", "multiple"),
        (filters({"exakt": {"a": "1"}}), "spec.filters[0].exakt", "unknown dialect"),
        (filters({"exact": {"Type": "x"}}), "spec.filters[0].exact[Type]", "attribute name"),
        (filters({"prefix": {"0abc": "x"}}), "spec.filters[0].prefix[0abc]", "attribute name"),
        (filters({"suffix": {"my-ext": "x"}}), "spec.filters[0].suffix[my-ext]", "attribute name"),
        (filters({"exact": {"a": "1", "b": "2"}}), "spec.filters[0].exact", "one per filter"),
        (filters({"exact": {"count": 10}}), "spec.filters[0].exact[count]", "must be a string"),
        (filters({"exact": {"urgent": True}}), "spec.filters[0].exact[urgent]", "string"),
        (filters({"exact": ["type"]}), "spec.filters[0].exact", "map of attribute name"),
        (filters({"cesql": 5}), "spec.filters[0].cesql", "must be a string"),
        (filters({}, {"cesql": "type ="}), "spec.filters[1].cesql", "at column 7"),
        (filters({"not": []}), "spec.filters[0].not", "must be an object"),
        (filters({"all": {"exact": {"a": "b"}}}), "spec.filters[0].all", "must be a list"),
        (filters({"any": "x"}), "spec.filters[0].any", "must be a list"),
        (filters("exact"), "spec.filters[0]", "must be an object"),
        (filters(None), "spec.filters[0]", "must be an object"),
        ({"filters": {"exact": {}}}, "spec.filters", "must be a list"),
        (
            filters({"all": [{"exact": {"a": "b"}}, {"prefix": {"B": "c"}}]}),
            "spec.filters[0].all[1].prefix[B]",
            "attribute name",
        ),
        (filters({"not": {"cesql": "a LIKE 1"}}), "spec.filters[0].not.cesql", "column 8"),
        ({"filter": {"attributes": {"Type": "x"}}}, "spec.filter.attributes[Type]", "name"),
        ({"filter": {"attributes": {"count": 10}}}, "spec.filter.attributes[count]", "string"),
        ({"filter": {"attributes": ["type"]}}, "spec.filter.attributes", "map"),
        ({"filter": {"type": "x"}}, "spec.filter.type", "unknown field"),
        ({"filter": "type=x"}, "spec.filter", "must be an object"),
    ],
)
def test_admission_refuses_what_the_knative_webhook_refuses(
    spec: Any, path: str, message: str
) -> None:
    error = refused(spec)
    assert error.path == path
    assert message in error.message
    assert str(error).startswith(f"{path}: ")


ONE_OF = "exact, prefix, suffix, all, any, not, cesql"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("nope", "spec: must be an object"),
        ({"filter": "x"}, "spec.filter: must be an object with 'attributes'"),
        ({"filter": {"t": 1}}, "spec.filter.t: unknown field; a filter has only 'attributes'"),
        (
            filters({"exact": ["type"]}),
            "spec.filters[0].exact: must be a map of attribute name to string value",
        ),
        (
            filters({"cesql": 5}),
            "spec.filters[0].cesql: must be a string holding a CESQL expression",
        ),
        ({"filters": "x"}, "spec.filters: must be a list of filters"),
        (
            filters({"exakt": {}}),
            f"spec.filters[0].exakt: unknown dialect; expected one of {ONE_OF}",
        ),
        (
            filters({"exact": {"a": "1"}, "prefix": {"b": "2"}}),
            "spec.filters[0]: multiple dialects found (exact, prefix); a filter holds exactly one",
        ),
        (filters(7), f"spec.filters[0]: must be an object with one dialect of {ONE_OF}"),
    ],
)
def test_admission_errors_in_full(spec: Any, error: str) -> None:
    assert str(refused(spec)) == error


def test_compile_filters_names_spec_filters_unless_told_otherwise() -> None:
    with pytest.raises(FilterError) as raised:
        compile_filters([{"cesql": 5}])
    assert raised.value.path == "spec.filters[0].cesql"


def test_not_counts_as_a_dialect_even_when_empty() -> None:
    # Knative tests `not` for nil, the other dialects for length: `not: {}` is set.
    with pytest.raises(FilterError, match="multiple dialects found \\(exact, not\\)"):
        compile_filters([{"exact": {"type": "a"}, "not": {}}])
    assert compile_user_filter('{"not": {}}')(EVENT) is True


@pytest.mark.parametrize(
    "entry",
    [
        {"not": {"not": {}}},
        {"not": {"all": [{}]}},
        {"not": {"any": [{}, {"exact": {"type": ""}}]}},
        {"all": [{"not": {}}, {"not": {"not": {}}}]},
    ],
)
def test_nothing_to_apply_stays_nothing_to_apply_through_not_all_and_any(
    entry: dict[str, Any],
) -> None:
    assert matches(filters(entry)) is True
    assert matches(filters(entry, {"exact": {"type": "nope"}})) is False


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # all stops at the first failure; any at the first pass: the order of members matters.
        ({"all": [{"exact": {"type": "nope"}}, {"exact": {"type": "order.created"}}]}, False),
        ({"all": [{"exact": {"type": "order.created"}}, {"exact": {"type": "nope"}}]}, False),
        ({"any": [{"exact": {"type": "order.created"}}, {"exact": {"type": "nope"}}]}, True),
        ({"any": [{"exact": {"type": "nope"}}, {"exact": {"type": "order.created"}}]}, True),
    ],
)
def test_all_fails_on_any_failure_and_any_passes_on_any_pass(
    entry: dict[str, Any], expected: bool
) -> None:
    assert matches(filters(entry)) is expected


def test_admission_checks_filter_even_when_filters_win() -> None:
    spec = {"filter": {"attributes": {"Bad": "x"}}, "filters": [{"exact": {"a": "b"}}]}
    assert refused(spec).path == "spec.filter.attributes[Bad]"


def test_a_filter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="multiple dialects"):
        compile_filters([{"exact": {"a": "1"}, "prefix": {"a": "1"}}])


def test_compile_filters_names_the_path_it_is_given() -> None:
    with pytest.raises(FilterError) as raised:
        compile_filters([{"cesql": "("}], path="subscription.filters")
    assert raised.value.path == "subscription.filters[0].cesql"
    assert compile_filters([])(EVENT) is True


# user filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("type = 'order.created'", True),
        ("type LIKE 'payment.%'", False),
        ('{"exact": {"type": "order.created"}}', True),
        ('{"prefix": {"type": "payment."}}', False),
        ("{suffix: {type: .created}}", True),
        ("exact:\n  type: order.created\n", True),
        ('{"not": {"exact": {"type": "order.created"}}}', False),
        ('{"any": [{"exact": {"type": "x"}}, {"cesql": "count = 10"}]}', True),
        ('{"cesql": "urgent"}', True),
        ("  EXISTS subject  ", True),
    ],
)
def test_user_filter_takes_cesql_or_one_dialect_object(text: str, expected: bool) -> None:
    assert compile_user_filter(text)(EVENT) is expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            " ",
            "filter: empty: type a CESQL expression or an object such as"
            ' {"exact": {"type": "order.created"}}',
        ),
        ("{}", f"filter: needs one non-empty dialect of {ONE_OF}"),
        (
            '{"exact": {"type": ""}}',
            "filter: an empty value filters nothing (Knative skips such a filter)",
        ),
    ],
)
def test_user_filter_errors_in_full(text: str, error: str) -> None:
    with pytest.raises(FilterError) as raised:
        compile_user_filter(text)
    assert str(raised.value) == error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("type = ", "not a valid CESQL expression: unexpected end of expression at column 8"),
        ("{}", "needs one non-empty dialect"),
        ('{"exact": {}}', "needs one non-empty dialect"),
        ('{"exact": {"type": ""}}', "an empty value filters nothing"),
        ('{"exact": {"type": "a"}, "prefix": {"type": "b"}}', "multiple dialects"),
        ('{"exact": {"type": "a"', "not valid JSON or YAML"),
        ('{"exact": {"count": 10}}', "must be a string"),
        ('{"typo": {"type": "a"}}', "unknown dialect"),
        ("[1, 2]", "not a valid CESQL expression"),
    ],
)
def test_user_filter_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        compile_user_filter(text)
    assert message in str(raised.value)
    assert raised.value.path.startswith("filter")
