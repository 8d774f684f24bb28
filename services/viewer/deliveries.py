"""`GET /api/deliveries`: one event as the broker's journal has it, with its deliveries.

    GET /api/deliveries?seq=<broker seq>
    GET /api/deliveries?id=<event id>&source=<event source>

The answer is the journal's `GET /_shop/events/<seq>` unchanged: the event, its `deliveries`
(per Trigger: final `state`, `attempts`) and every attempt (trigger, attempt number, status,
duration, outcome, error). The viewer's entries do not carry the broker's seq (a delivered event
does not say it), so an event is looked up by source and id in the journal's newest events,
newest page first, at most SEARCH_PAGES pages back.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from kit import RequestError
from services.viewer.broker_reads import BrokerReads, broker_reads, passed_through
from wire.strings import quote

EVENTS_PATH = "/_shop/events"
PAGE = 1000  # the journal's largest page
SEARCH_PAGES = 10

routes = Blueprint("viewer_deliveries", __name__)


@routes.get("/api/deliveries")
def show_deliveries() -> Response:
    """The journal's detail of the event named by `seq`, or by `id` and `source`."""
    reads = broker_reads()
    seq = _seq_argument()
    if seq is None:
        event_id, source = _required("id"), _required("source")
        seq = find_seq(reads, event_id, source)
        if seq is None:
            raise RequestError(
                404,
                f"the broker's journal has no event {quote(event_id)} from {quote(source)}"
                f" among its newest {SEARCH_PAGES * PAGE} events",
                "id",
            )
    return passed_through(reads.get(f"{EVENTS_PATH}/{seq}"))


def find_seq(reads: BrokerReads, event_id: str, source: str) -> int | None:
    """The journal seq of the event with this id and source (the newest such), if it is there."""
    head = reads.get_json(EVENTS_PATH, {"after": "0", "limit": "1"})
    before = int(head.get("last_seq") or 0) + 1
    oldest = int(head.get("oldest_seq") or 1)
    for _ in range(SEARCH_PAGES):
        if before <= oldest:
            return None
        after = max(0, before - 1 - PAGE)
        page = reads.get_json(EVENTS_PATH, {"after": str(after), "limit": str(PAGE)})
        found = _match(page.get("events") or [], event_id, source, reads.broker, before)
        if found is not None:
            return found
        before = after + 1
    return None


def _match(
    events: list[dict[str, Any]], event_id: str, source: str, broker: str | None, before: int
) -> int | None:
    for event in reversed(events):
        if event["seq"] >= before or (broker is not None and event.get("broker") != broker):
            continue
        if event.get("id") == event_id and event.get("source") == source:
            return int(event["seq"])
    return None


def _seq_argument() -> int | None:
    raw = request.args.get("seq")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise RequestError(400, f"seq must be a positive whole number, not {quote(raw)}", "seq")
    return int(raw)


def _required(name: str) -> str:
    value = request.args.get(name, "")
    if not value:
        raise RequestError(400, f"{name} is required (or give seq)", name)
    return value
