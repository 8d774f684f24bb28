"""How the CLI reads streams and prints status and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shop.inspect.deadletters import name_destinations, render_list, time_bound
from shop.inspect.sse import SseMessage, parse_stream
from shop.inspect.status import (
    BrokerStatus,
    DeadLetterCounts,
    Readiness,
    ServiceStatus,
    StatusReport,
    TriggerStatus,
    counts_from_summary,
    render,
)
from shop.inspect.tail import line_of


def test_server_sent_events_are_parsed_as_browsers_parse_them() -> None:
    lines = [
        "retry: 1000",
        "",
        ": a comment",
        "id: 7",
        "event: cloudevent",
        'data: {"a":',
        "data: 1}",
        "",
        "id: 8",
        ": keep-alive",
        "",
        "data:no space",
        "",
    ]
    assert list(parse_stream(lines)) == [
        SseMessage("cloudevent", '{"a":\n1}', "7"),
        SseMessage("message", "no space", "8"),
    ]


def test_an_id_without_a_message_still_moves_the_last_id() -> None:
    messages = list(parse_stream(["id: 3", "", "event: status", "data: {}", ""], last_id="1"))
    assert messages == [SseMessage("status", "{}", "3")]


def test_one_event_per_line() -> None:
    event: dict[str, Any] = {
        "received_at": "2026-05-01T10:00:00.123+00:00",
        "type": "order.created",
        "source": "/shop/order",
        "subject": "o-1",
        "id": "e-1",
        "deliveries": 2,
    }
    assert line_of(event) == (
        "10:00:00.123  order.created  /shop/order  subject=o-1  id=e-1  (delivered 2 times)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", "2026-05-01T09:59:30+00:00"),
        ("10m", "2026-05-01T09:50:00+00:00"),
        ("2h", "2026-05-01T08:00:00+00:00"),
        ("1d", "2026-04-30T10:00:00+00:00"),
        ("2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z"),
    ],
)
def test_time_bounds_may_be_relative(text: str, expected: str) -> None:
    now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert time_bound(text, now) == expected


def test_local_failures_are_shown_by_service_name() -> None:
    names = name_destinations(
        {
            "broker": "http://127.0.0.1:8080/shop/default",
            "payment": "http://127.0.0.1:8103",
            "shop/payment": "http://127.0.0.1:8103",
            "smtp": "smtp://127.0.0.1:2525",
        }
    )
    assert names == {
        "http://127.0.0.1:8103": "payment",
        "http://127.0.0.1:8080/shop/default": "broker",
    }
    body = {
        "total": 3,
        "dead_letters": [
            {
                "id": 3,
                "received_at": "2026-05-01T10:00:00.000+00:00",
                "type": "order.created",
                "subject": "o-1",
                "destination": "http://127.0.0.1:8103",
                "error_code": 503,
                "error_data": "down",
                "redelivered_at": None,
            }
        ],
    }
    table = render_list(body, names)
    assert "payment (http://127.0.0.1:8103)" in table and "pending" in table
    assert table.endswith("(1 of 3 dead letters)")


@pytest.mark.parametrize(
    ("status", "ready", "why"),
    [
        ({"conditions": [{"type": "Ready", "status": "True"}]}, True, None),
        (
            {"conditions": [{"type": "Ready", "status": "False", "reason": "R", "message": "m"}]},
            False,
            "R: m",
        ),
        ({"conditions": [{"type": "Ready", "status": "Unknown", "reason": "Wait"}]}, None, "Wait"),
        ({"conditions": [{"type": "Other", "status": "True"}]}, None, "NoReadyCondition: "),
        (None, None, "NoStatus: "),
    ],
)
def test_readiness_from_knative_conditions(
    status: dict[str, Any] | None, ready: bool | None, why: str | None
) -> None:
    readiness = Readiness.from_conditions(status)
    assert readiness.ready is ready
    if why is None:
        assert readiness.why is None
    else:
        assert readiness.why is not None and readiness.why.startswith(why)


def test_a_report_is_ready_only_with_a_broker_and_everything_true() -> None:
    ok = Readiness(True)
    counts = DeadLetterCounts(None, unknown_because="not asked")
    service = ServiceStatus("order", "http://order", ok)
    nothing = StatusReport("x", [], [service], [], [], counts)
    assert not nothing.all_ready
    ready = StatusReport("x", [BrokerStatus("default", "http://b", ok)], [service], [], [], counts)
    assert ready.all_ready
    unknown = StatusReport(
        "x", [BrokerStatus("default", None, Readiness(None))], [service], [], [], counts
    )
    assert not unknown.all_ready
    assert "NOT everything is ready" in render(unknown)


def test_dead_letters_are_counted_by_the_service_that_failed_them() -> None:
    counts = counts_from_summary(
        {
            "total": 3,
            "pending": 2,
            "by_destination": [
                {"destination": "http://payment.shop.svc.cluster.local/", "total": 2},
                {"destination": "http://order.shop.svc.cluster.local", "total": 1},
            ],
        },
        held_by_broker=4,
    )
    payment = ServiceStatus(
        "payment",
        "http://payment.shop.example.com",
        Readiness(True),
        address="http://payment.shop.svc.cluster.local",
    )
    report = StatusReport(
        "x", [BrokerStatus("default", "b", Readiness(True))], [payment], [], [], counts
    )
    text = render(report)
    assert "payment  http://payment.shop.example.com  True   2" in text
    assert "3 stored, 2 not redelivered; 4 kept by the local broker" in text


def test_the_triggers_show_a_queued_column_only_when_a_queue_depth_is_known() -> None:
    counts = DeadLetterCounts(total=0, pending=0)
    broker = [BrokerStatus("default", "b", Readiness(True))]
    plain = TriggerStatus("order", "type=order.created", "order", Readiness(True))
    queued = TriggerStatus("payment", "(all)", "payment", Readiness(True), queued=7)

    without = render(StatusReport("x", broker, [], [plain], [], counts))
    with_depth = render(StatusReport("x", broker, [], [plain, queued], [], counts))

    assert "QUEUED" not in without
    assert "SUBSCRIBER  QUEUED  READY" in with_depth
    assert "payment  (all)               payment     7       True" in with_depth
    assert "order    type=order.created  order       -       True" in with_depth
