"""Which failures Knative retries, and how long it waits before each retry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.knative import (
    CLUSTER_DEFAULT_DELIVERY,
    BackoffPolicy,
    DeliverySpec,
    backoff_delay,
    is_retryable,
    next_wait,
    retry_after_seconds,
)
from wire.knative.http_date import parse_http_date

NOW = datetime(1994, 11, 6, 8, 49, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (None, True),  # connection refused, reset, timeout
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (404, True),
        (408, True),
        (409, True),
        (429, True),
        (200, False),
        (202, False),
        (204, False),
        (301, False),
        (307, False),
        (400, False),
        (401, False),
        (403, False),
        (405, False),
        (410, False),
        (413, False),
        (415, False),
        (422, False),
    ],
)
def test_retryable_statuses_are_knatives_selective_retry_table(
    status: int | None, retried: bool
) -> None:
    assert is_retryable(status) is retried


@pytest.mark.parametrize(
    ("policy", "delay", "retry_number", "wait"),
    [
        ("linear", 1.0, 1, 0.0),  # the first linear retry is immediate
        ("linear", 1.0, 2, 1.0),
        ("linear", 1.0, 3, 2.0),
        ("linear", 0.5, 5, 2.0),
        ("exponential", 0.2, 1, 0.2),
        ("exponential", 0.2, 2, 0.4),
        ("exponential", 0.2, 3, 0.8),
        ("exponential", 1.0, 11, 1024.0),  # no cap
    ],
)
def test_backoff_follows_knatives_zero_based_formula(
    policy: BackoffPolicy, delay: float, retry_number: int, wait: float
) -> None:
    spec = DeliverySpec(retry=20, backoff_policy=policy, backoff_delay=delay)
    assert backoff_delay(spec, retry_number) == pytest.approx(wait)


@pytest.mark.parametrize(
    "spec",
    [
        DeliverySpec(retry=3),
        DeliverySpec(retry=3, backoff_policy="exponential"),
        DeliverySpec(retry=3, backoff_delay=1.0),  # no policy: Knative sets no back-off
    ],
)
def test_without_policy_and_delay_retries_are_back_to_back(spec: DeliverySpec) -> None:
    assert [backoff_delay(spec, n) for n in (1, 2, 3)] == [0.0, 0.0, 0.0]


def test_retry_numbers_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(CLUSTER_DEFAULT_DELIVERY, 0)


def test_the_cluster_default_backs_off_about_205_seconds_in_all() -> None:
    total = sum(backoff_delay(CLUSTER_DEFAULT_DELIVERY, n) for n in range(1, 11))
    assert total == pytest.approx(204.6)


@given(
    policy=st.sampled_from(["linear", "exponential"]),
    delay=st.floats(0, 60, allow_nan=False),
    retry_number=st.integers(1, 40),
)
def test_backoff_never_shrinks_from_one_retry_to_the_next(
    policy: BackoffPolicy, delay: float, retry_number: int
) -> None:
    spec = DeliverySpec(retry=50, backoff_policy=policy, backoff_delay=delay)
    assert backoff_delay(spec, retry_number + 1) >= backoff_delay(spec, retry_number) >= 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("+5", 5.0),  # Go's strconv.ParseInt accepts a sign
        ("-5", 0.0),
        ("0", 0.0),
        ("1.5", None),
        ("soon", None),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 30.0),  # IMF-fixdate
        ("sun, 06 nov 1994 08:49:37 GMT", 30.0),  # names match case-insensitively
        ("Sunday, 06-Nov-94 08:49:37 GMT", 30.0),  # RFC 850
        ("Sun Nov  6 08:49:37 1994", 30.0),  # asctime
        ("Sun Nov 6 08:49:37 1994", 30.0),
        ("Sun, 06 Nov 1994 08:48:00 GMT", 0.0),  # in the past
        ("Sun, 06 Nov 1994 08:49:37 UTC", None),
        ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
        ("Sun, 31 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 08:49:37 gmt", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_rfc850_two_digit_years_follow_gos_pivot() -> None:
    assert parse_http_date("Monday, 01-Jan-68 00:00:00 GMT") == datetime(2068, 1, 1, tzinfo=UTC)
    assert parse_http_date("Wednesday, 01-Jan-69 00:00:00 GMT") == datetime(1969, 1, 1, tzinfo=UTC)


CAPPED = DeliverySpec(retry=5, backoff_policy="exponential", backoff_delay=1.0, retry_after_max=10)


@pytest.mark.parametrize(
    ("spec", "retry_number", "status", "header", "wait"),
    [
        (CAPPED, 1, 429, "5", 5.0),  # Retry-After beats a shorter back-off
        (CAPPED, 1, 503, "30", 10.0),  # ... up to retryAfterMax
        (CAPPED, 1, 503, "Sun, 06 Nov 1994 08:49:12 GMT", 5.0),
        (CAPPED, 3, 429, "2", 4.0),  # a longer back-off wins
        (CAPPED, 1, 500, "5", 1.0),  # only 429 and 503 are honoured
        (CAPPED, 1, 404, "5", 1.0),
        (CAPPED, 1, None, "5", 1.0),
        (CAPPED, 1, 429, None, 1.0),
        (CAPPED, 1, 429, "soon", 1.0),
        # without retryAfterMax the header is ignored (the feature is opt-in)
        (DeliverySpec(retry=5, backoff_policy="exponential", backoff_delay=1.0), 1, 429, "5", 1.0),
        # PT0S opts out
        (DeliverySpec(retry=5, retry_after_max=0.0), 1, 503, "5", 0.0),
        (DeliverySpec(retry=5, retry_after_max=60.0), 2, 503, "5", 5.0),
    ],
)
def test_next_wait_honours_retry_after_only_for_429_and_503_with_a_cap(
    spec: DeliverySpec, retry_number: int, status: int | None, header: str | None, wait: float
) -> None:
    assert next_wait(spec, retry_number, status, header, NOW) == pytest.approx(wait)
