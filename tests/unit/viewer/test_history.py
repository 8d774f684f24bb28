"""The viewer's ring buffer: bounded, counts what it drops, resumable by sequence number."""

from __future__ import annotations

import threading
import time

import pytest

from services.viewer.history import EventHistory
from tests.support.events import wire_event


def test_it_keeps_the_last_events_in_order_and_counts_the_dropped() -> None:
    history = EventHistory(3)
    for number in range(5):
        history.append(wire_event("t", id=f"e{number}"))
    assert [entry.event.id for entry in history.entries()] == ["e2", "e3", "e4"]
    status = history.status()
    assert (status.capacity, status.size, status.dropped) == (3, 3, 2)
    assert (status.first_seq, status.last_seq) == (3, 5)


def test_after_returns_what_came_after_a_sequence_number() -> None:
    history = EventHistory(10)
    for number in range(4):
        history.append(wire_event("t", id=f"e{number}"))
    assert [entry.seq for entry in history.after(2)] == [3, 4]
    assert [entry.seq for entry in history.after(0)] == [1, 2, 3, 4]
    assert history.after(4) == []
    assert history.after(99) == []


def test_after_an_event_that_was_dropped_starts_at_the_oldest_kept() -> None:
    history = EventHistory(2)
    for number in range(5):
        history.append(wire_event("t", id=f"e{number}"))
    assert [entry.seq for entry in history.after(1)] == [4, 5]


def test_a_second_delivery_of_the_same_event_is_counted_not_listed_again() -> None:
    history = EventHistory(2)
    first = history.append(wire_event("t", id="same", source="/a"))
    other_source = history.append(wire_event("t", id="same", source="/b"))
    again = history.append(wire_event("t", id="same", source="/a"))
    assert again is first and first.deliveries == 2 and other_source.deliveries == 1
    assert [entry.seq for entry in history.entries()] == [1, 2]
    assert history.status().last_seq == 2
    history.append(wire_event("t", id="x"))
    history.append(wire_event("t", id="y"))
    # Once it left the buffer, the event is new to it again.
    assert history.append(wire_event("t", id="same", source="/a")).deliveries == 1


def test_with_subject_finds_one_subjects_events_in_arrival_order() -> None:
    history = EventHistory(10)
    history.append(wire_event("order.created", id="1", subject="o-1"))
    history.append(wire_event("order.created", id="2", subject="o-2"))
    history.append(wire_event("payment.authorized", id="3", subject="o-1"))
    assert [entry.event.id for entry in history.with_subject("o-1")] == ["1", "3"]


def test_wait_after_wakes_up_when_an_event_arrives() -> None:
    history = EventHistory(10)
    appender = threading.Timer(0.05, lambda: history.append(wire_event("t", id="late")))
    appender.start()
    started = time.monotonic()
    entries = history.wait_after(0, timeout=5)
    assert [entry.event.id for entry in entries] == ["late"]
    assert time.monotonic() - started < 4


def test_wait_after_returns_nothing_when_nothing_arrives_in_time() -> None:
    history = EventHistory(10)
    assert history.wait_after(0, timeout=0.05) == []


def test_close_releases_waiters() -> None:
    history = EventHistory(10)
    threading.Timer(0.05, history.close).start()
    assert history.wait_after(0, timeout=5) == []
    assert history.closed


def test_a_buffer_without_room_is_refused() -> None:
    with pytest.raises(ValueError):
        EventHistory(0)
