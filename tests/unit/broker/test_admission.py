"""The ingress's pure rules: broker paths, the hop counter, arrival time, pass-through headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shop.broker.admission import (
    BadPath,
    arrival_time,
    broker_of_path,
    filter_view,
    next_ttl,
    pass_through_headers,
)


@pytest.mark.parametrize(
    ("path", "broker"),
    [
        ("/shop/default", ("shop", "default")),
        ("/shop/default/", ("shop", "default")),
        ("//x", ("", "x")),
    ],
)
def test_a_path_of_two_segments_names_a_broker(path: str, broker: tuple[str, str]) -> None:
    assert broker_of_path(path) == broker


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 404),
        ("/shop", 400),
        ("/a/b/c", 400),
        ("/a/b//", 400),
        ("", 400),
        ("shop/default", 400),
    ],
)
def test_other_paths_are_refused_as_knative_refuses_them(path: str, status: int) -> None:
    with pytest.raises(BadPath) as refused:
        broker_of_path(path)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("given", "ttl"),
    [
        (None, 255),
        (255, 254),
        ("10", 9),
        (" 7 ", 6),
        ("+3", 2),
        (1, 0),
        (0, 0),
        (-5, 0),
        ("abc", 255),
        ("1.5", 255),
        (True, 255),
        (2**31, 255),
        ("2147483647", 2147483646),
    ],
)
def test_the_hop_counter_follows_knatives_ttl_defaulter(given: object, ttl: int) -> None:
    assert next_ttl(given) == ttl  # type: ignore[arg-type]


def test_arrival_time_is_rfc3339_utc_with_microseconds() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
    assert arrival_time(moment) == "2026-03-04T05:06:07.000089Z"


def test_only_allowed_headers_pass_through() -> None:
    headers = [
        ("X-Request-Id", "1"),
        ("Retry-After", "2"),
        ("Knative-Foo", "3"),
        ("X-B3-Sampled", "4"),
        ("X-Other", "5"),
        ("ce-id", "6"),
        ("Authorization", "7"),
    ]
    assert pass_through_headers(headers) == (
        ("x-request-id", "1"),
        ("retry-after", "2"),
        ("knative-foo", "3"),
        ("x-b3-sampled", "4"),
    )


def test_filters_do_not_see_the_hop_counter() -> None:
    attributes: dict[str, str | int | bool] = {
        "type": "t",
        "knativebrokerttl": 3,
        "knativearrivaltime": "x",
    }
    assert filter_view(attributes) == {"type": "t", "knativearrivaltime": "x"}
    assert attributes["knativebrokerttl"] == 3
