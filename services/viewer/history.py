"""The viewer's memory: the last N events it received, in a ring buffer that counts what it drops.

The viewer is stateless as Knative sees it, so the buffer lives in the one worker process of the
service; at start it may be filled from the broker's journal (services/viewer/restore.py), so
that a restart does not forget what the broker still holds. Every reader (the page, the SSE
streams, the CLI) reads it by sequence number, which lets a client that reconnects ask for what
came after the last one it saw.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wire.http_binding import WireEvent


@dataclass
class Entry:
    """One event as the viewer received it: its place in the sequence and when it came.

    An event is one entry however often it is delivered (a retry, a redelivery: same source
    and id); `deliveries` counts them. An entry restored from the broker's journal starts at 0
    deliveries (to this process), its `received_at` the broker's arrival time.
    """

    seq: int
    received_at: float
    event: WireEvent
    deliveries: int = 1


@dataclass(frozen=True)
class Restored:
    """What the buffer was filled with at start: events from the broker's journal, or why not.

    `pruned_before_seq` is set when the history wanted reached back to where the broker's
    retention had pruned (its seq, the broker's), `retention` the broker's policy as its journal
    states it (`age_seconds`, `max_bytes`).
    """

    journal: str
    events: int = 0
    pruned_before_seq: int | None = None
    retention: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class HistoryStatus:
    """How full the buffer is, how much it has forgotten, and what it was filled with."""

    capacity: int
    size: int
    dropped: int
    first_seq: int
    last_seq: int
    restored: Restored | None = None


class EventHistory:
    """A thread-safe ring buffer of the last `capacity` events, oldest first."""

    def __init__(self, capacity: int, clock: Callable[[], float] = time.time) -> None:
        if capacity <= 0:
            raise ValueError("the history must hold at least one event")
        self._capacity = capacity
        self._clock = clock
        self._entries: deque[Entry] = deque()
        self._by_key: dict[tuple[str, str], Entry] = {}
        self._last_seq = 0
        self._dropped = 0
        self._closed = False
        self._restored: Restored | None = None
        self._changed = threading.Condition()

    @property
    def capacity(self) -> int:
        return self._capacity

    def append(self, event: WireEvent) -> Entry:
        """Keep `event` as the newest entry, dropping the oldest when full; wake the waiters.

        An event already in the buffer (same source and id) is not added again: its entry
        counts one more delivery.
        """
        with self._changed:
            known = self._by_key.get((event.source, event.id))
            if known is not None:
                known.deliveries += 1
                return known
            entry = self._add(event, self._clock(), deliveries=1)
            self._changed.notify_all()
        return entry

    def restore(self, events: Iterable[tuple[WireEvent, float]], restored: Restored) -> int:
        """Add events from before this process started, oldest first, each with the time the
        broker took it and no delivery yet; one already held is skipped. How many were added."""
        added = 0
        with self._changed:
            for event, arrived in events:
                if (event.source, event.id) not in self._by_key:
                    self._add(event, arrived, deliveries=0)
                    added += 1
            self._restored = restored
            self._changed.notify_all()
        return added

    def _add(self, event: WireEvent, received_at: float, deliveries: int) -> Entry:
        self._last_seq += 1
        entry = Entry(self._last_seq, received_at, event, deliveries)
        self._entries.append(entry)
        self._by_key[(event.source, event.id)] = entry
        if len(self._entries) > self._capacity:
            oldest = self._entries.popleft()
            del self._by_key[(oldest.event.source, oldest.event.id)]
            self._dropped += 1
        return entry

    def status(self) -> HistoryStatus:
        with self._changed:
            return self._status()

    def _status(self) -> HistoryStatus:
        first = self._entries[0].seq if self._entries else self._last_seq + 1
        return HistoryStatus(
            self._capacity, len(self._entries), self._dropped, first, self._last_seq, self._restored
        )

    def after(self, seq: int) -> list[Entry]:
        """The entries newer than `seq`, oldest first (all of them for 0)."""
        with self._changed:
            return self._after(seq)

    def _after(self, seq: int) -> list[Entry]:
        if not self._entries or seq >= self._last_seq:
            return []
        # Sequence numbers are consecutive, so an entry's place in the deque is arithmetic.
        start = max(0, seq - self._entries[0].seq + 1)
        return list(itertools.islice(self._entries, start, None))

    def wait_after(self, seq: int, timeout: float) -> list[Entry]:
        """The entries newer than `seq`, waiting up to `timeout` seconds for one to arrive."""
        with self._changed:
            self._changed.wait_for(lambda: self._last_seq > seq or self._closed, timeout)
            return self._after(seq)

    def with_subject(self, subject: str) -> list[Entry]:
        """Every entry whose event has this subject, oldest first."""
        with self._changed:
            return [entry for entry in self._entries if entry.event.get("subject") == subject]

    def entries(self) -> list[Entry]:
        """Every entry, oldest first."""
        with self._changed:
            return list(self._entries)

    def close(self) -> None:
        """Release every waiter (the process is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
