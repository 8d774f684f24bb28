"""The viewer's memory: the last N events it received, in a ring buffer that counts what it drops.

The viewer is stateless as Knative sees it (a restart forgets), so the buffer lives in the one
worker process of the service; every reader (the page, the SSE streams, the CLI) reads it by
sequence number, which lets a client that reconnects ask for what came after the last one it saw.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wire.http_binding import WireEvent


@dataclass
class Entry:
    """One event as the viewer received it: its place in the sequence and when it came.

    An event is one entry however often it is delivered (a retry, a redelivery: same source
    and id); `deliveries` counts them.
    """

    seq: int
    received_at: float
    event: WireEvent
    deliveries: int = 1


@dataclass(frozen=True)
class HistoryStatus:
    """How full the buffer is and how much it has forgotten."""

    capacity: int
    size: int
    dropped: int
    first_seq: int
    last_seq: int


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
        self._changed = threading.Condition()

    def append(self, event: WireEvent) -> Entry:
        """Keep `event` as the newest entry, dropping the oldest when full; wake the waiters.

        An event already in the buffer (same source and id) is not added again: its entry
        counts one more delivery.
        """
        key = (event.source, event.id)
        with self._changed:
            known = self._by_key.get(key)
            if known is not None:
                known.deliveries += 1
                return known
            self._last_seq += 1
            entry = Entry(self._last_seq, self._clock(), event)
            self._entries.append(entry)
            self._by_key[key] = entry
            if len(self._entries) > self._capacity:
                oldest = self._entries.popleft()
                del self._by_key[(oldest.event.source, oldest.event.id)]
                self._dropped += 1
            self._changed.notify_all()
        return entry

    def status(self) -> HistoryStatus:
        with self._changed:
            return self._status()

    def _status(self) -> HistoryStatus:
        first = self._entries[0].seq if self._entries else self._last_seq + 1
        return HistoryStatus(
            self._capacity, len(self._entries), self._dropped, first, self._last_seq
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
