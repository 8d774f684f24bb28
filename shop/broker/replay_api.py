"""The broker's write endpoints under `/_shop/`: a replay, and a dead letter back to its Trigger.

POST /_shop/replay              {"after": SEQ, "until": SEQ | "ISO-8601 time", "filter": EXPR,
                                 "trigger": "ns/name" | "name", "dry_run": bool}
                                every field optional; 200 with the events (seq, id, type,
                                subject, triggers) sent or, with dry_run, that would be
POST /_shop/redeliver/<ns>/<broker>
                                {"destination": URL, "event": {structured CloudEvent}}: the
                                event (a dead letter without its knativeerror* extensions)
                                to the Triggers whose subscriber is `destination` only; 202

Like the rest of `/_shop/`, these are the local broker's own: no sender identity is asked.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from shop.broker.http_server import JSON, Request, Response
from shop.broker.replay import Replayer, ReplayRange
from shop.broker.store import StoreError, Unstorable
from wire.errors import Problem
from wire.http_binding import event_from_json
from wire.json_input import JsonInputError, load_json
from wire.knative.filters import FilterError, compile_user_filter

log = logging.getLogger(__name__)

REPLAY_PATH = "/_shop/replay"
REDELIVER_PREFIX = "/_shop/redeliver/"
_REPLAY_FIELDS = frozenset({"after", "until", "filter", "trigger", "dry_run"})


class ReplayApi:
    """Answers the POSTs above; None for any other request."""

    def __init__(self, replayer: Replayer) -> None:
        self._replayer = replayer

    async def respond(self, request: Request) -> Response | None:
        if request.method != "POST":
            return None
        try:
            if request.path == REPLAY_PATH:
                return await self._replay(_body(request))
            if request.path.startswith(REDELIVER_PREFIX):
                return await self._redeliver(request.path[len(REDELIVER_PREFIX) :], _body(request))
        except Problem as problem:
            return _json(problem.to_json(), problem.status)
        return None

    async def _replay(self, body: dict[str, Any]) -> Response:
        chosen = self._range(body)
        dry_run = _boolean(body.get("dry_run", False), "dry_run")
        plan = await self._replayer.plan(chosen)
        answer: dict[str, Any] = {
            "dry_run": dry_run,
            "count": len(plan.events),
            "last_seq": plan.last_seq,
            "limit": self._replayer.limit,
        }
        if dry_run:
            return _json({**answer, "events": [item.to_json() for item in plan.events]})
        sent = await self._replayer.send(plan)
        failed = [item for item in sent if item.error is not None]
        answer["queued"] = len(sent) - len(failed)
        answer["events"] = [item.to_json() for item in sent]
        log.info(
            "replayed %d of %d events (seq %d to %d)%s",
            answer["queued"],
            len(sent),
            chosen.after + 1,
            plan.last_seq,
            "" if chosen.trigger is None else f" to trigger {chosen.trigger}",
        )
        if failed:
            answer["error"] = (
                f"{len(failed)} of {len(sent)} events were not sent: {failed[0].error}"
            )
            return _json(answer, 503)
        return _json(answer)

    def _range(self, body: dict[str, Any]) -> ReplayRange:
        unknown = sorted(set(body) - _REPLAY_FIELDS)
        if unknown:
            raise Problem(400, f"unknown field {unknown[0]!r}", field=unknown[0])
        after = _whole(body.get("after", 0), "after")
        until = body.get("until")
        until_seq = until_time = None
        if isinstance(until, str):
            until_time = _time(until, "until")
        elif until is not None:
            until_seq = _whole(until, "until")
        text = body.get("filter")
        matches = None
        if text is not None:
            if not isinstance(text, str):
                raise Problem(
                    400, "filter must be a string (CESQL or a filter object)", field="filter"
                )
            try:
                matches = compile_user_filter(text)
            except FilterError as error:
                raise Problem(400, str(error), field="filter") from None
        trigger = body.get("trigger")
        if trigger is not None:
            if not isinstance(trigger, str):
                raise Problem(400, "trigger must be a string: ns/name or a name", field="trigger")
            trigger = self._replayer.trigger_key(trigger)
        return ReplayRange(after, until_seq, until_time, matches, trigger)

    async def _redeliver(self, broker_path: str, body: dict[str, Any]) -> Response:
        broker = self._replayer.broker(broker_path.strip("/"))
        if broker is None:
            raise Problem(404, f"no broker {broker_path!r} (expected <namespace>/<name>)")
        destination = body.get("destination")
        if not isinstance(destination, str) or not destination:
            raise Problem(
                400,
                "destination must be the URL that failed (knativeerrordest)",
                field="destination",
            )
        event = event_from_json(body.get("event"))
        try:
            seq, sent_to = await self._replayer.redeliver(broker, event, destination)
        except (StoreError, Unstorable) as error:
            raise Problem(503, f"the broker could not store the event: {error}") from None
        log.info(
            "redelivered event %s to %s",
            event.id,
            ", ".join(sent_to),
            extra={"event_id": event.id, "type": event.type, "source": event.source},
        )
        return _json({"seq": seq, "id": event.id, "triggers": list(sent_to)}, 202)


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        document = load_json(request.body, unique_members=True)
    except JsonInputError as error:
        raise Problem(400, str(error)) from None
    if not isinstance(document, dict):
        raise Problem(400, "the body must be a JSON object")
    return document


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Problem(400, f"{name} must be a seq: a whole number from 0", field=name)
    return value


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise Problem(400, f"{name} must be true or false", field=name)
    return value


def _time(text: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Problem(
            400,
            f"{name} must be a seq or an ISO-8601 time with an offset, e.g. 2026-01-31T12:00:00Z",
            field=name,
        )
    return parsed.timestamp()


def _json(document: object, status: int = 200) -> Response:
    return Response(status, json.dumps(document).encode(), content_type=JSON)
