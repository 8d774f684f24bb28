"""Originated events: kept until the broker accepts them, never sent for a rolled-back change."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request, structured_request
from tests.support.processes import free_port, wait_for
from tests.support.recording_sink import RecordingSink

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def backlog(url: str) -> float:
    return metric(url, "shop_outbox_backlog")


def test_an_event_waits_for_an_unreachable_broker_and_is_delivered_once_it_returns(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    app = serve_kit_app(
        tmp_path,
        DATABASE_URL=database_url,
        K_SINK=f"http://127.0.0.1:{port}/shop/default",
        K_CE_OVERRIDES='{"extensions": {"cluster": "kind-dev"}}',
    )
    try:
        response = requests.post(
            f"{app.url}/orders",
            json={"order_id": "o-1"},
            headers={"traceparent": TRACEPARENT},
            timeout=5,
        )
        assert response.status_code == 201
        event_id = response.json()["event_id"]
        wait_for(lambda: "relay_failed" in app.logs(), what="a failed relay attempt")
        assert backlog(app.url) == 1

        with RecordingSink(port=port) as sink:
            [received] = wait_for(lambda: sink.accepted() or None, timeout=15, what="delivery")
            wait_for(lambda: backlog(app.url) == 0, what="an empty outbox")
            assert len(sink.accepted()) == 1
        headers = received.headers
        assert headers["ce-id"] == event_id
        assert headers["ce-type"] == "test.order.placed"
        assert headers["ce-source"] == "/shop/kittest"
        assert headers["ce-cluster"] == "kind-dev"
        assert headers["ce-dataschema"] == "https://shop.example/schemas/test.order.placed.json"
        assert headers["ce-time"]
        assert headers["content-type"] == "application/json"
        assert headers["ce-traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
        assert received.body == b'{"order_id":"o-1","amount":3}'
    finally:
        app.stop()


def test_an_event_the_broker_refuses_for_good_is_parked_not_retried_and_not_lost(
    tmp_path: Path,
) -> None:
    with RecordingSink(status=400) as sink:
        app = serve_kit_app(tmp_path, K_SINK=sink.url, OUTBOX_POLL_SECONDS="0.2")
        try:
            placed = requests.post(f"{app.url}/orders", json={"order_id": "o-1"}, timeout=5)
            assert placed.status_code == 201
            wait_for(lambda: metric(app.url, "shop_outbox_parked_total") == 1, what="parking")
            # Retried, the next attempt would come within a second (back-off 0.5 s, jittered).
            time.sleep(2.5)
            assert metric(app.url, "shop_outbox_parked_total") == 1
            assert metric(app.url, "shop_outbox_relay_failures_total") == 0
            assert backlog(app.url) == 1
            assert app.logs().count("relay_parked") == 1
        finally:
            app.stop()


def test_nothing_is_sent_for_a_transaction_that_rolled_back(
    tmp_path: Path, database_url: str
) -> None:
    with RecordingSink() as sink:
        app = serve_kit_app(tmp_path, DATABASE_URL=database_url, K_SINK=sink.url)
        try:
            failed = requests.post(
                f"{app.url}/orders", json={"order_id": "x", "fail": True}, timeout=5
            )
            assert failed.status_code == 500
            placed = requests.post(f"{app.url}/orders", json={"order_id": "y"}, timeout=5)
            assert placed.status_code == 201
            wait_for(lambda: len(sink.accepted()) == 1, what="the committed order's event")
            wait_for(lambda: backlog(app.url) == 0, what="an empty outbox")
            assert [r.body for r in sink.accepted()] == [b'{"order_id":"y","amount":3}']
            rows = requests.get(f"{app.url}/effects", timeout=5).json()
            assert [row["event_id"] for row in rows] == ["y"]
        finally:
            app.stop()


def test_events_a_handler_emits_carry_the_trace_of_the_event_it_handled(tmp_path: Path) -> None:
    with RecordingSink() as sink:
        app = serve_kit_app(tmp_path, K_SINK=sink.url)
        try:
            headers, body = binary_request("test.emit", {}, traceparent=TRACEPARENT)
            assert requests.post(app.url, data=body, headers=headers, timeout=5).status_code == 202
            emitted = wait_for(
                lambda: len(sink.accepted()) == 2 and sink.accepted(), what="2 events"
            )
            assert sorted(r.body for r in emitted) == [b'{"n":1}', b'{"n":2}']
            for received in emitted:
                trace = received.headers["ce-traceparent"].split("-")[1]
                assert trace == TRACEPARENT.split("-")[1]
            assert len({r.headers["ce-id"] for r in emitted}) == 2
        finally:
            app.stop()


def test_replies_to_a_batch_travel_through_the_outbox(tmp_path: Path) -> None:
    with RecordingSink() as sink:
        app = serve_kit_app(tmp_path, K_SINK=sink.url)
        try:
            import json

            first = json.loads(structured_request("test.effect", {}, id="b-1")[1])
            second = json.loads(structured_request("test.effect", {}, id="b-2")[1])
            response = requests.post(
                app.url,
                data=json.dumps([first, second]),
                headers={"Content-Type": "application/cloudevents-batch+json"},
                timeout=10,
            )
            assert (response.status_code, response.content) == (202, b"")
            replies = wait_for(
                lambda: len(sink.accepted()) == 2 and sink.accepted(), what="replies"
            )
            assert sorted(r.body for r in replies) == [b'{"for":"b-1"}', b'{"for":"b-2"}']
        finally:
            app.stop()
