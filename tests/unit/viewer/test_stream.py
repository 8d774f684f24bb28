"""The live stream over a real HTTP connection: server-sent events, filtered, resumable."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.viewer.app import create_app
from shop.inspect.sse import SseMessage, parse_stream
from tests.support.events import wire_event
from tests.support.processes import ServedApp, wait_for
from tests.unit.viewer.conftest import ServedFlask, viewer_config
from wire.http_binding import to_binary


@pytest.fixture
def viewer_url() -> Iterator[str]:
    app = create_app(viewer_config(history=5, stream_seconds=0.8, heartbeat_seconds=0.2))
    with ServedFlask(app) as served:
        yield served.url


def post(url: str, event_type: str, **attributes: Any) -> None:
    headers, body = to_binary(wire_event(event_type, {"n": 1}, **attributes))
    assert requests.post(url, headers=headers, data=body, timeout=5).status_code == 202


def read(url: str, *, headers: dict[str, str] | None = None, **query: str) -> list[SseMessage]:
    """Every message of one stream until the server ends it (its lifetime is short here)."""
    with requests.get(
        f"{url}/api/stream", params=query, headers=headers, stream=True, timeout=10
    ) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return list(parse_stream(response.iter_lines(decode_unicode=True)))


def cloudevents(messages: list[SseMessage]) -> list[dict[str, Any]]:
    return [json.loads(m.data) for m in messages if m.event == "cloudevent"]


def test_the_stream_sends_events_as_they_arrive(viewer_url: str) -> None:
    post(viewer_url, "before", id="old")
    sender = threading.Timer(0.3, lambda: post(viewer_url, "order.created", id="live"))
    sender.start()
    messages = read(viewer_url)
    sender.join(5)
    assert messages[0].event == "status"
    assert [event["id"] for event in cloudevents(messages)] == ["live"]
    live = next(m for m in messages if m.event == "cloudevent")
    assert live.last_id == "2"


def test_the_stream_replays_from_after_and_filters_on_the_server(viewer_url: str) -> None:
    post(viewer_url, "order.created", id="a")
    post(viewer_url, "payment.declined", id="b")
    post(viewer_url, "order.confirmed", id="c")
    messages = read(viewer_url, after="0", filter="type LIKE 'order.%'")
    assert [event["id"] for event in cloudevents(messages)] == ["a", "c"]


def test_a_reconnect_resumes_after_last_event_id(viewer_url: str) -> None:
    for name in "abc":
        post(viewer_url, "t", id=name)
    messages = read(viewer_url, headers={"Last-Event-ID": "1"}, after="0")
    assert [event["id"] for event in cloudevents(messages)] == ["b", "c"]


def test_a_client_behind_the_buffer_is_told_how_many_it_missed(viewer_url: str) -> None:
    for number in range(8):
        post(viewer_url, "t", id=f"e{number}")
    messages = read(viewer_url, after="1")
    gap = next(m for m in messages if m.event == "gap")
    assert json.loads(gap.data) == {"missed": 2, "after": 1}
    assert [event["id"] for event in cloudevents(messages)] == ["e3", "e4", "e5", "e6", "e7"]


def test_keep_alives_carry_the_buffer_status_and_move_the_last_id(viewer_url: str) -> None:
    post(viewer_url, "skipped", id="x")
    messages = read(viewer_url, after="0", filter="type = 'other'")
    statuses = [json.loads(m.data) for m in messages if m.event == "status"]
    assert len(statuses) >= 2 and statuses[-1]["last_seq"] == 1
    assert statuses[-1].keys() >= {"capacity", "size", "dropped"}
    assert messages[-1].last_id == "1", "a filtered-out event still moves Last-Event-ID"


def test_a_bad_filter_is_refused_before_the_stream_starts(viewer_url: str) -> None:
    response = requests.get(f"{viewer_url}/api/stream", params={"filter": "type ="}, timeout=5)
    assert response.status_code == 400 and response.json()["field"] == "filter"


def test_sigterm_ends_open_streams_so_gunicorn_stops_at_once(tmp_path: Path) -> None:
    """Under gunicorn (a real process): a graceful stop does not wait for open streams."""
    viewer = ServedApp(
        "services.viewer.app:create_app()",
        tmp_path / "viewer.log",
        env={"VIEWER_STREAM_SECONDS": "40", "LOG_LEVEL": "WARNING"},
    ).start()
    ended = threading.Event()

    def hold_stream() -> None:
        with (
            contextlib.suppress(requests.RequestException),
            requests.get(f"{viewer.url}/api/stream", stream=True, timeout=60) as response,
        ):
            for _ in response.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=hold_stream, daemon=True)
    reader.start()
    wait_for(
        lambda: "shop_viewer_streams 1.0" in requests.get(f"{viewer.url}/metrics", timeout=5).text,
        what="the stream to be open",
    )
    started = time.monotonic()
    assert viewer.process is not None
    viewer.process.send_signal(signal.SIGTERM)
    viewer.process.wait(timeout=15)
    assert time.monotonic() - started < 5, "gunicorn waited for the stream (graceful_timeout)"
    assert ended.wait(5)
