"""Filling the history at start: from where, never for long, and what it says when it cannot."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from services.viewer.app import ViewerConfig, create_app
from services.viewer.history import EventHistory, Restored
from services.viewer.restore import broker_of, journal_url_for
from tests.support.events import wire_event
from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import viewer_config


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def viewer_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("shop.viewer")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def restored_status(config: ViewerConfig) -> dict[str, object]:
    app = create_app(config)
    status: dict[str, object] = app.test_client().get("/api/status").get_json()
    return status


def test_an_unreachable_broker_leaves_the_history_empty_and_the_log_says_so(
    viewer_log: Records,
) -> None:
    journal = f"http://127.0.0.1:{free_port()}/_shop/events"
    status = restored_status(viewer_config(journal_url=journal))
    assert status["size"] == 0
    assert status["restored"] == {
        "journal": journal,
        "events": 0,
        "pruned_before_seq": None,
        "retention": None,
        "error": "nothing answers there (is the broker running?)",
    }
    assert any("the history starts empty" in m and journal in m for m in viewer_log.messages)


def test_a_journal_that_never_answers_delays_the_start_only_by_the_time_allowed(
    silent_port: int, viewer_log: Records
) -> None:
    started = time.monotonic()
    config = viewer_config(
        journal_url=f"http://127.0.0.1:{silent_port}/_shop/events", journal_seconds=0.5
    )
    status = restored_status(config)
    assert time.monotonic() - started < 3
    restored = status["restored"]
    assert isinstance(restored, dict) and restored["error"] == "no answer in time"


def test_something_that_is_not_a_journal_is_reported_by_its_answer(broker: RecordingSink) -> None:
    journal = broker.url.replace("/shop/default", "/_shop/events")
    restored = restored_status(viewer_config(journal_url=journal))["restored"]
    assert isinstance(restored, dict)
    assert restored["error"] == "it answered 501 (not the local broker's journal?)"


def test_without_a_journal_url_nothing_is_asked_and_nothing_is_said() -> None:
    assert restored_status(viewer_config())["restored"] is None


def test_the_journal_is_the_one_of_the_broker_the_viewer_sends_to() -> None:
    sink = {"K_SINK": "http://127.0.0.1:8080/shop/default"}
    assert ViewerConfig.from_env(sink).journal_url == "http://127.0.0.1:8080/_shop/events"
    other = {**sink, "JOURNAL_URL": "http://elsewhere:9/_shop/events"}
    assert ViewerConfig.from_env(other).journal_url == "http://elsewhere:9/_shop/events"
    assert ViewerConfig.from_env({**sink, "JOURNAL_URL": "off"}).journal_url is None
    assert ViewerConfig.from_env({}).journal_url is None
    assert journal_url_for("not a url") is None
    assert broker_of("http://127.0.0.1:8080/shop/default") == "shop/default"
    assert broker_of("http://broker-ingress.knative-eventing.svc.cluster.local/") is None


def test_restored_events_count_no_delivery_until_the_trigger_brings_them() -> None:
    history = EventHistory(3)
    old = [wire_event("t", id=f"e{n}") for n in range(4)]
    added = history.restore([(event, 100.0 + n) for n, event in enumerate(old)], Restored("j"))
    assert added == 4
    entries = history.entries()
    assert [e.event.id for e in entries] == ["e1", "e2", "e3"]
    assert [(e.deliveries, e.received_at) for e in entries] == [(0, 101.0), (0, 102.0), (0, 103.0)]
    again = history.append(old[3])
    assert again is entries[-1] and again.deliveries == 1
    assert history.status().size == 3 and history.status().restored == Restored("j")
