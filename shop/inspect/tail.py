"""Following the viewer's live stream from a terminal, reconnecting where it left off."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import requests

from shop.broker.config import retention_text
from shop.inspect.reach import why_no_answer
from shop.inspect.sse import parse_stream

RECONNECT_SECONDS = 1.0


class StreamRefused(Exception):
    """The viewer refused the stream (a bad filter); the message is its answer."""


@dataclass(frozen=True)
class TailOptions:
    """What to follow and how to print it."""

    viewer_url: str
    filter: str | None = None
    history: bool = False
    count: int | None = None
    json_lines: bool = False


def line_of(event: dict[str, Any]) -> str:
    """One event on one line: arrival time, type, source, subject, id."""
    received = str(event.get("received_at", ""))[11:23]
    subject = event.get("subject")
    parts = [received, event["type"], event["source"]]
    if subject is not None:
        parts.append(f"subject={subject}")
    parts.append(f"id={event['id']}")
    if event.get("deliveries", 1) > 1:
        parts.append(f"(delivered {event['deliveries']} times)")
    return "  ".join(parts)


def history_notes(status: dict[str, Any]) -> list[str]:
    """What to say before the history, from the viewer's first status: where it begins (the
    broker pruned before it, or the viewer could not restore it) and whether it is empty."""
    notes = []
    restored = status.get("restored") or {}
    pruned_before = restored.get("pruned_before_seq")
    if pruned_before:
        retention = restored.get("retention") or {}
        age, size = retention.get("age_seconds"), retention.get("max_bytes")
        policy = retention_text(age, size) if age and size else "unknown"
        notes.append(f"history before seq {pruned_before} was pruned (retention: {policy})")
    if restored.get("error"):
        notes.append(
            f"the viewer's history starts at its last restart: it could not read the broker's "
            f"journal at {restored.get('journal')}: {restored['error']}"
        )
    if not status.get("size"):
        notes.append("the viewer holds no events yet; waiting for new ones (Ctrl-C to stop)")
    return notes


def follow(
    options: TailOptions,
    out: TextIO,
    err: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print events until `count` were printed (or forever); 0, or 2 for a refused filter."""
    printed = 0
    last_id: str | None = None
    warned = False
    noted = not options.history
    while True:
        params: dict[str, str] = {}
        if options.filter:
            params["filter"] = options.filter
        if last_id is None and options.history:
            params["after"] = "0"
        headers = {"Last-Event-ID": last_id} if last_id is not None else {}
        try:
            with requests.get(
                f"{options.viewer_url}/api/stream",
                params=params,
                headers=headers,
                stream=True,
                timeout=(5, 60),
            ) as response:
                if response.status_code == 400:
                    raise StreamRefused(response.json().get("error", response.text))
                response.raise_for_status()
                if warned:
                    print("shop tail: connected again", file=err, flush=True)
                    warned = False
                for message in parse_stream(response.iter_lines(decode_unicode=True), last_id):
                    last_id = message.last_id
                    if message.event == "status" and not noted:
                        noted = True
                        for note in history_notes(json.loads(message.data)):
                            print(f"shop tail: {note}", file=err, flush=True)
                    if message.event == "gap":
                        missed = json.loads(message.data)["missed"]
                        print(f"shop tail: {missed} events were dropped before shown", file=err)
                    if message.event != "cloudevent":
                        continue
                    event = json.loads(message.data)
                    out.write((json.dumps(event) if options.json_lines else line_of(event)) + "\n")
                    out.flush()
                    printed += 1
                    if options.count is not None and printed >= options.count:
                        return 0
        except requests.RequestException as error:
            if not warned:
                why = why_no_answer(error)
                print(f"shop tail: {options.viewer_url}: {why}; retrying", file=err, flush=True)
                warned = True
            sleep(RECONNECT_SECONDS)
