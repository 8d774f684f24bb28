"""A Trigger's filter in words (the viewer, `shop up`'s table, `shop topology`)."""

from __future__ import annotations

from typing import Any

import pytest

from wire.knative.filters.description import ALL_EVENTS, describe_filter


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({}, ALL_EVENTS),
        ({"filters": []}, ALL_EVENTS),
        ({"filters": [{"exact": {"type": "order.created"}}]}, "type = order.created"),
        ({"filters": [{"prefix": {"type": "order."}}]}, "type starts with order."),
        ({"filters": [{"suffix": {"source": "/payment"}}]}, "source ends with /payment"),
        ({"filters": [{"cesql": "subject LIKE 'o-%'"}]}, "subject LIKE 'o-%'"),
        (
            {"filters": [{"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}]}]},
            "(type = a or type = b)",
        ),
        ({"filters": [{"not": {"exact": {"type": "a"}}}]}, "not (type = a)"),
        (
            {"filters": [{"exact": {"type": "a"}}, {"prefix": {"subject": "o-"}}]},
            "type = a and subject starts with o-",
        ),
        ({"filter": {"attributes": {"type": "user.created"}}}, "type = user.created"),
        ({"filter": {"attributes": {"partitionkey": ""}}}, "partitionkey present"),
        (
            {"filter": {"attributes": {"type": "a"}}, "filters": [{"exact": {"type": "b"}}]},
            "type = b",
        ),
    ],
)
def test_a_trigger_filter_in_words(spec: dict[str, Any], words: str) -> None:
    assert describe_filter(spec) == words


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"filters": [{"exact": {"type": "a", "subject": "o-1"}}]}, "type = a and subject = o-1"),
        (
            {"filters": [{"all": [{"exact": {"type": "a"}}, {"suffix": {"id": "-1"}}]}]},
            "(type = a and id ends with -1)",
        ),
        (
            {"filter": {"attributes": {"type": "a", "region": ""}}},
            "type = a and region present",
        ),
        ({"filters": [5]}, "5"),
        ({"filters": [{}], "filter": {"attributes": {"type": "a"}}}, "type = a"),
        ({"filters": [{"cesql": "  "}]}, ALL_EVENTS),
    ],
)
def test_several_attributes_and_members_are_joined_in_words(
    spec: dict[str, Any], words: str
) -> None:
    assert describe_filter(spec) == words


@pytest.mark.parametrize(
    "spec",
    [
        {"filters": "exact"},
        {"filters": [{"exact": ["type"]}]},
        {"filters": [{"all": "ab"}]},
        {"filters": [{"any": ""}]},
        {"filters": [{"cesql": 5}]},
        {"filter": {"attributes": ["type"]}},
        {"filter": "type"},
    ],
)
def test_a_malformed_filter_is_described_as_no_filter_not_a_crash(spec: dict[str, Any]) -> None:
    # The viewer describes triggers it is handed before anything admitted them.
    assert describe_filter(spec) == ALL_EVENTS
