"""ISO-8601 durations are read the way Knative's rickb777/date period parser reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.knative.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.2S", 0.2),
        ("PT10S", 10.0),
        ("PT1M30S", 90.0),
        ("PT1H", 3600.0),
        ("P1D", 86_400.0),
        ("P1W", 604_800.0),
        ("P1DT1H", 90_000.0),
        ("P1Y", 31_556_952.0),  # 365.2425 days
        ("P1M", 2_629_746.0),  # a twelfth of that year
        ("PT1M", 60.0),  # M after T is minutes
        ("PT0S", 0.0),
        ("P0", 0.0),
        ("PT1.5S", 1.5),
        ("PT0,5S", 0.5),  # decimal comma
        ("PT2.S", 2.0),
        ("+PT1S", 1.0),
        ("PT0.25S", 0.2),  # Knative keeps one decimal digit
        ("PT0.5M1S", 31.0),  # a fraction before a whole last field is accepted
        ("P1DT", 86_400.0),  # a trailing T is accepted
        ("PT3600S", 3600.0),
    ],
)
def test_knative_durations_are_accepted_with_their_value_in_seconds(
    text: str, seconds: float
) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1s", "expected 'P'"),
        ("10", "expected 'P'"),
        ("pt1s", "expected 'P'"),
        (" PT1S", "expected 'P'"),
        ("PT", "expected at least one"),
        ("P", "expected at least one"),
        ("", "empty"),
        ("-PT1S", "negative"),
        ("PT-1S", "expected a number"),
        ("P1S", "'S' cannot occur before 'T'"),
        ("P1H", "'H' cannot occur before 'T'"),
        ("PT1D", "'D' cannot occur after 'T'"),
        ("PT1Y", "'Y' cannot occur after 'T'"),
        ("PT1H1H", "may occur only once"),
        ("PT1HT1M", "'T' may occur only once"),
        ("P1.5DT1.5H", "only the last field may have a fraction"),
        ("PTxS", "expected a number"),
        ("P.5D", "expected a number"),
        ("PT1", "must be followed by a designator"),
        ("PT1X", "unexpected 'X'"),
        ("PT1s", "unexpected 's'"),
        ("P1T1S", "unexpected 'T'"),
        ("PT99999999999999999999S", "too large"),
    ],
)
def test_strings_knative_refuses_raise_duration_error(text: str, reason: str) -> None:
    with pytest.raises(DurationError, match=reason):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 5, 0.2, ["PT1S"]])
def test_non_strings_are_not_durations(value: object) -> None:
    with pytest.raises(DurationError, match="expected an ISO-8601 duration"):
        parse_duration(value)


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@given(hours=st.integers(0, 10_000), minutes=st.integers(0, 10_000), seconds=st.integers(0, 10_000))
def test_hours_minutes_and_seconds_add_up(hours: int, minutes: int, seconds: int) -> None:
    expected = hours * 3600 + minutes * 60 + seconds
    assert parse_duration(f"PT{hours}H{minutes}M{seconds}S") == expected


@given(tenths=st.integers(0, 10**9))
def test_one_decimal_of_seconds_is_exact(tenths: int) -> None:
    assert parse_duration(f"PT{tenths // 10}.{tenths % 10}S") == tenths / 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty string is not a duration"),
        ("-", "an empty string is not a duration"),
        ("+", "an empty string is not a duration"),
        ("-P1D", "'-P1D': negative durations are not allowed"),
        ("T1S", "'T1S': expected 'P' at the start (e.g. 'PT0.2S')"),
        ("PT", "'PT': expected at least one of Y, M, W, D, H, M or S"),
        ("PTS", "'PTS': expected a number before 'S'"),
        ("PTxS", "'PTxS': expected a number before 'x'"),
        ("PT1..S", "'PT1..S': expected a number before 'S'"),
        ("PT.5M", "'PT.5M': expected a number before 'M'"),
        ("P,5D", "'P,5D': expected a number before 'D'"),
        ("PT\u0661S", "'PT\u0661S': expected a number before '\u0661'"),  # not an ASCII digit
        ("PT1", "'PT1': a number must be followed by a designator"),
        ("PT9223372036854775808S", "'PT9223372036854775808S': the number before 'S' is too large"),
        ("P1H", "'P1H': 'H' cannot occur before 'T'"),
        ("PT1W", "'PT1W': 'W' cannot occur after 'T'"),
        ("PT1Q", "'PT1Q': unexpected 'Q' (designators are Y M W D T H M S)"),
        ("PT1S1S", "'PT1S1S': 'S' may occur only once"),
        ("PT1HT", "'PT1HT': 'T' may occur only once"),
        ("PT1.5M1.5S", "'PT1.5M1.5S': only the last field may have a fraction"),
    ],
)
def test_a_refusal_names_the_duration_and_the_field_at_fault(text: str, message: str) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(text)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT9223372036854775807S", float(2**63 - 1)),  # the largest number a field may hold
        ("PT1.2.3S", 1.2),  # one decimal digit counts; what follows it is ignored
        ("PT1,2,3S", 1.2),
        ("P0D", 0.0),
        ("PT0.0S", 0.0),
    ],
)
def test_the_edges_of_a_number_in_a_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
