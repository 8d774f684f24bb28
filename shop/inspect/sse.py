"""Reading server-sent events (the viewer's `/api/stream`), as the HTML spec's parser does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseMessage:
    """One dispatched message: its event name, data and the last event id seen so far."""

    event: str
    data: str
    last_id: str | None


def parse_stream(lines: Iterable[str], last_id: str | None = None) -> Iterator[SseMessage]:
    """The messages of a stream of lines (without their line endings).

    Comments (`: ...`) and `retry` are skipped; an `id` line sets the id that later messages,
    and a reconnect's `Last-Event-ID`, carry; a message is dispatched at a blank line.
    """
    event = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseMessage(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
