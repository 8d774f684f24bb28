"""`shop tail` following a real viewer: counts, filters, reconnects without loss or repeats."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import pytest
import requests

from services.viewer.app import create_app
from shop.inspect.tail import StreamRefused, TailOptions, follow
from tests.support.events import wire_event
from tests.support.processes import free_port, wait_for
from tests.unit.viewer.conftest import ServedFlask, viewer_config
from wire.http_binding import to_binary


@pytest.fixture
def viewer_url() -> Iterator[str]:
    # Streams end every 0.3 s, so following across several of them is what the test sees.
    app = create_app(viewer_config(history=50, stream_seconds=0.3, heartbeat_seconds=0.1))
    with ServedFlask(app) as served:
        yield served.url


def post(url: str, event_type: str, **attributes: str) -> None:
    headers, body = to_binary(wire_event(event_type, {"n": 1}, **attributes))
    assert requests.post(url, headers=headers, data=body, timeout=5).status_code == 202


def test_tail_prints_matching_events_across_reconnects_without_loss_or_repeats(
    viewer_url: str,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    post(viewer_url, "t.kept", id="before")

    def produce() -> None:
        for number in range(12):
            post(viewer_url, "t.kept" if number % 2 == 0 else "t.skipped", id=f"e{number}")
            threading.Event().wait(0.1)

    producer = threading.Timer(0.2, produce)
    producer.start()
    # From the history on: a reconnect that forgot where it was would start over and repeat.
    options = TailOptions(
        viewer_url, filter="type = 't.kept'", history=True, count=7, json_lines=True
    )
    try:
        assert follow(options, out, err) == 0
    finally:
        producer.join(10)
    ids = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert ids == ["before", "e0", "e2", "e4", "e6", "e8", "e10"]


def test_history_starts_with_what_the_viewer_holds(viewer_url: str) -> None:
    for name in ("a", "b"):
        post(viewer_url, "t", id=name, subject="s-1")
    out = io.StringIO()
    assert follow(TailOptions(viewer_url, history=True, count=2), out, io.StringIO()) == 0
    lines = out.getvalue().splitlines()
    assert "id=a" in lines[0] and "id=b" in lines[1]
    assert "  t  /tests  subject=s-1  " in lines[0]


def test_a_bad_filter_is_refused(viewer_url: str) -> None:
    with pytest.raises(StreamRefused, match="CESQL"):
        follow(TailOptions(viewer_url, filter="type ="), io.StringIO(), io.StringIO())


def test_an_unreachable_viewer_is_retried_with_one_warning() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = io.StringIO()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(TailOptions(url), io.StringIO(), err, sleep=sleep)
    assert err.getvalue().count("retrying") == 1
    assert waits == [1.0, 1.0, 1.0]


def test_history_from_a_viewer_that_could_not_restore_says_why_and_then_follows() -> None:
    journal = f"http://127.0.0.1:{free_port()}/_shop/events"
    app = create_app(viewer_config(history=50, journal_url=journal))
    out, err = io.StringIO(), io.StringIO()
    with ServedFlask(app) as served:
        tail = threading.Thread(
            target=follow,
            args=(TailOptions(served.url, history=True, count=1), out, err),
            daemon=True,  # a failing test must not leave the process waiting for it
        )
        tail.start()
        try:
            # It says at once that there is nothing to show yet, rather than waiting silently.
            wait_for(lambda: "no events yet" in err.getvalue(), what="the note on stderr")
            post(served.url, "t.live", id="live")
        finally:
            tail.join(10)
    assert not tail.is_alive()
    assert err.getvalue().splitlines() == [
        "shop tail: the viewer's history starts at its last restart: it could not read the "
        f"broker's journal at {journal}: nothing answers there (is the broker running?)",
        "shop tail: the viewer holds no events yet; waiting for new ones (Ctrl-C to stop)",
    ]
    assert "id=live" in out.getvalue()
