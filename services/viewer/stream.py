"""Server-sent events: the live list, filtered on the server, resumable by `Last-Event-ID`.

Each stream ends after `lifetime` seconds (under the ksvc's request timeout) and the browser's
EventSource reconnects by itself with the last id it saw, so a stream never holds a worker thread
for long and loses nothing the buffer still holds. A client that fell further behind than the
buffer reaches is told how many events it missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from services.viewer.history import EventHistory
from services.viewer.views import entry_json, status_json
from wire.knative.filters import Event

RECONNECT_MILLISECONDS = 1000


def message(event: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message: `id`, `event` and a one-line JSON `data`."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


def event_stream(
    history: EventHistory,
    matches: Callable[[Event], bool],
    after: int,
    *,
    lifetime: float,
    heartbeat: float,
) -> Iterator[str]:
    """The SSE messages of one connection: history after `after` that matches, then live events."""
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    status = history.status()
    yield message("status", status_json(status))
    deadline = time.monotonic() + lifetime
    last = after
    while not history.closed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        entries = history.wait_after(last, min(heartbeat, remaining))
        if not entries:
            # The id line moves the client's Last-Event-ID past events the filter skipped.
            yield f"id: {last}\n: keep-alive\n\n" + message("status", status_json(history.status()))
            continue
        missed = entries[0].seq - last - 1
        if missed > 0:
            yield message("gap", {"missed": missed, "after": last})
        for entry in entries:
            last = entry.seq
            if matches(entry.event.attributes):
                yield message("cloudevent", entry_json(entry), entry.seq)
