"""Filling the viewer's history from the broker's journal at start: a restart forgets nothing that
the broker still holds.

The local broker (`shop broker`) serves its journal at `/_shop/events`; with `data=1` each event
comes as its subscribers get it. The viewer reads the newest `capacity` events of its broker
once, within a time limit, before it serves: what the Trigger then delivers again (deliveries
to the viewer that were pending while it was down) is the same event by source and id and is
counted, not listed twice. A journal that does not answer in time, or is not there (a cluster's
broker has none), leaves the history empty, and the log says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from services.viewer.history import EventHistory, Restored
from wire.http_binding import WireEvent, event_from_json
from wire.spec import InvalidEvent

log = logging.getLogger("shop.viewer")

JOURNAL_PATH = "/_shop/events"
PAGE = 1000  # the journal's largest page


def journal_url_for(broker_url: str | None) -> str | None:
    """Where the broker that `broker_url` names serves its journal (its origin, `/_shop/events`)."""
    if not broker_url:
        return None
    parts = urlsplit(broker_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, JOURNAL_PATH, "", ""))


def broker_of(broker_url: str | None) -> str | None:
    """The `namespace/name` of the broker an ingress URL names (`.../<ns>/<name>`), if it does."""
    if not broker_url:
        return None
    segments = [part for part in urlsplit(broker_url).path.split("/") if part]
    return "/".join(segments) if len(segments) == 2 else None


def restore_history(
    history: EventHistory, journal_url: str, *, broker: str | None, seconds: float
) -> Restored:
    """Fill `history` with the newest events of `broker` (all brokers for None) from the journal
    at `journal_url`, taking at most `seconds`; what was restored, or why nothing was."""
    deadline = time.monotonic() + seconds
    try:
        restored, events = _read(journal_url, history.capacity, broker, deadline)
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        why = _why(error)
        log.warning(
            "the history starts empty: cannot read the broker's journal at %s: %s",
            journal_url,
            why,
        )
        restored, events = Restored(journal_url, error=why), []
    history.restore(events, restored)
    if restored.error is None:
        log.info("restored %d events from the broker's journal at %s", restored.events, journal_url)
    return restored


def _read(
    url: str, capacity: int, broker: str | None, deadline: float
) -> tuple[Restored, list[tuple[WireEvent, float]]]:
    head = _get(url, {"after": "0", "limit": "1"}, deadline)
    last = int(head.get("last_seq") or 0)
    pruned_before = int(head.get("pruned_before_seq") or 0)
    # Seqs are consecutive but for what retention pruned, so this start finds at most
    # `capacity` events; the broker's other brokers' events may make it fewer.
    after = start = max(0, last - capacity)
    found: dict[tuple[str, str], tuple[WireEvent, float]] = {}
    late = False
    while after < last:
        if time.monotonic() >= deadline:
            late = True
            break
        page = _get(url, {"after": str(after), "limit": str(PAGE), "data": "1"}, deadline)
        if not page["events"]:
            break
        for event, arrived in _events(page["events"], broker):
            found.setdefault((event.source, event.id), (event, arrived))
        after = int(page["next_after"])
    if late:
        log.warning(
            "read the broker's journal up to seq %d of %d in the time allowed; newer events "
            "are missing from the history",
            after,
            last,
        )
    restored = Restored(
        url,
        events=min(len(found), capacity),
        # Only when the history wanted events from before that seq: else it is no news.
        pruned_before_seq=pruned_before if start + 1 < pruned_before else None,
        retention=head.get("retention"),
    )
    return restored, list(found.values())[-capacity:]


def _events(
    items: Iterable[dict[str, Any]], broker: str | None
) -> Iterable[tuple[WireEvent, float]]:
    for item in items:
        if broker is not None and item.get("broker") != broker:
            continue
        try:
            event = event_from_json(item["event"])
        except InvalidEvent as error:
            log.warning("skipped journal event %s: %s", item.get("seq"), error.message)
            continue
        yield event, datetime.fromisoformat(item["arrival"]).timestamp()


def _get(url: str, params: dict[str, str], deadline: float) -> dict[str, Any]:
    timeout = max(0.1, deadline - time.monotonic())
    response = requests.get(url, params=params, timeout=timeout)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    if not isinstance(document.get("events"), list):
        raise ValueError("the answer is not a journal page (no events list)")
    return document


def _why(error: Exception) -> str:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"it answered {error.response.status_code} (not the local broker's journal?)"
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    if isinstance(error, requests.ConnectionError):
        return "nothing answers there (is the broker running?)"
    return str(error)[:200]
