"""The deadletter service: the broker's dead-letter sink, its HTTP API and redelivery.

GET    /deadletters                   newest first; ?type= &subject= &destination= &since=
                                      &until= (RFC 3339) &state=pending|redelivered &limit=
GET    /deadletters/summary           counts in all and by failed destination
GET    /deadletters/<id>              one dead letter: the original event, the error, the
                                      redeliveries
POST   /deadletters/<id>/redeliver    send the original event (same id) again: body
                                      {"to": "subscriber"} (the default: to the Trigger that
                                      failed it only) or {"to": "broker"} (every Trigger)
POST   /deadletters/redeliver         {"filter": EXPR, "to": ..., "dry_run": bool}: every
                                      pending dead letter the filter (CESQL or a Trigger
                                      filter object, on its attributes) matches
DELETE /deadletters/<id>              discard it
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from kit import KitConfig, RequestError, create_service, current_service
from kit.api import BodySchema, json_response
from kit.config import ConfigError
from services.deadletter import store
from services.deadletter.handlers import handlers
from services.deadletter.metrics import DeadLetterMetrics
from services.deadletter.migrations import HISTORY
from services.deadletter.redelivery import DEFAULT_MODE, MODES, Mode, Redeliverer
from wire.http_binding import WireEvent, to_structured_document
from wire.knative.filters import FilterError, Predicate, compile_user_filter

SERVICE = "deadletter"
MAX_LIMIT = 1000
DEFAULT_REDELIVERY_TIMEOUT = 10.0
_EXTENSION = "shop.deadletter"

log = logging.getLogger("shop.deadletter")


@dataclass(frozen=True)
class DeadletterConfig:
    """The kit's settings (K_SINK or BROKER_URL is where redeliveries go), the post timeout and
    where a redelivery that names none goes (REDELIVER_DEFAULT_TO)."""

    kit: KitConfig
    redelivery_timeout_seconds: float = DEFAULT_REDELIVERY_TIMEOUT
    default_mode: Mode = DEFAULT_MODE

    @property
    def broker_url(self) -> str | None:
        return self.kit.sink

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeadletterConfig:
        """From the environment: the kit's variables, REDELIVERY_TIMEOUT_SECONDS and
        REDELIVER_DEFAULT_TO (`broker`, the default, or `subscriber`, which needs `shop up`'s
        broker)."""
        env = os.environ if environ is None else environ
        raw = env.get("REDELIVERY_TIMEOUT_SECONDS")
        timeout = DEFAULT_REDELIVERY_TIMEOUT
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                raise ConfigError(
                    f"REDELIVERY_TIMEOUT_SECONDS must be a number, not {raw!r}"
                ) from None
            if timeout <= 0:
                raise ConfigError(f"REDELIVERY_TIMEOUT_SECONDS must be positive, not {raw!r}")
        mode = env.get("REDELIVER_DEFAULT_TO") or DEFAULT_MODE
        if mode not in MODES:
            raise ConfigError(
                f"REDELIVER_DEFAULT_TO must be one of {', '.join(MODES)}, not {mode[:40]!r}"
            )
        return cls(KitConfig.from_env(SERVICE, env), timeout, mode)


routes = Blueprint("deadletter", __name__)


@routes.get("/deadletters")
def list_dead_letters() -> Response:
    """The dead letters matching the query's filters, newest first, and the total count."""
    query = _query(request.args)
    with current_service().transaction() as tx:
        found, total = store.search(tx.connection, query)
    return json_response(200, {"dead_letters": [_summary(item) for item in found], "total": total})


@routes.get("/deadletters/summary")
def summarise_dead_letters() -> Response:
    """How many dead letters are stored, pending and redelivered, in all and by destination."""
    with current_service().transaction() as tx:
        groups = store.counts_by_destination(tx.connection)
    by_destination: dict[str, dict[str, Any]] = {}
    for destination, redelivered, count in groups:
        key = destination or ""
        entry = by_destination.setdefault(
            key, {"destination": destination, "total": 0, "pending": 0, "redelivered": 0}
        )
        entry["total"] += count
        entry["redelivered" if redelivered else "pending"] += count
    entries = list(by_destination.values())
    return json_response(
        200,
        {
            "total": sum(entry["total"] for entry in entries),
            "pending": sum(entry["pending"] for entry in entries),
            "redelivered": sum(entry["redelivered"] for entry in entries),
            "by_destination": entries,
        },
    )


@routes.get("/deadletters/<int:dead_letter_id>")
def show_dead_letter(dead_letter_id: int) -> Response:
    """One dead letter in full, or 404."""
    with current_service().transaction() as tx:
        found = _existing(tx.connection, dead_letter_id)
        attempts = store.redeliveries_of(tx.connection, dead_letter_id)
    return json_response(200, _detail(found, attempts))


REDELIVER = BodySchema(
    {
        "type": "object",
        "properties": {"to": {"enum": list(MODES)}},
        "additionalProperties": False,
    }
)
REDELIVER_MATCHING = BodySchema(
    {
        "type": "object",
        "properties": {
            "filter": {"type": "string", "minLength": 1, "maxLength": 4096},
            "to": {"enum": list(MODES)},
            "dry_run": {"type": "boolean"},
        },
        "required": ["filter"],
        "additionalProperties": False,
    }
)
#: The most dead letters one bulk redelivery sends; more matching are refused (narrow it).
MAX_BULK_REDELIVERIES = 1000


@routes.post("/deadletters/<int:dead_letter_id>/redeliver")
def redeliver_dead_letter(dead_letter_id: int) -> Response:
    """Send the original event again (`to`: subscriber or broker; REDELIVER_DEFAULT_TO when
    absent); 200 when the broker accepted it, 502 when it did not.

    The attempt is recorded either way; only an accepted one marks the dead letter redelivered.
    """
    body = REDELIVER.parse() if request.get_data(cache=True) else {}
    redeliverer = _redeliverer()
    with current_service().transaction() as tx:
        found = _existing(tx.connection, dead_letter_id)
    attempt, answer = _redeliver(redeliverer, found, body.get("to", redeliverer.default_mode))
    if attempt.accepted:
        return json_response(200, answer)
    return json_response(502, {"error": _refusal(attempt), **answer})


@routes.post("/deadletters/redeliver")
def redeliver_matching_dead_letters() -> Response:
    """Send again every pending dead letter `filter` matches (oldest first), or with `dry_run`
    list them; 200 when the broker accepted all, 502 when it refused any; 400 above the limit."""
    body = REDELIVER_MATCHING.parse()
    try:
        matches = compile_user_filter(body["filter"])
    except FilterError as error:
        raise RequestError(400, str(error), "filter") from None
    redeliverer = _redeliverer()
    found = _pending_matching(matches)
    mode: Mode = body.get("to", redeliverer.default_mode)
    answer: dict[str, Any] = {"dry_run": body.get("dry_run", False), "to": mode}
    if answer["dry_run"]:
        items = [_summary(item) for item in found]
        return json_response(200, {**answer, "count": len(items), "dead_letters": items})
    items, refused = [], []
    for item in found:
        attempt, one = _redeliver(redeliverer, item, mode)
        items.append({**_summary(item), "redelivery": one["redelivery"]})
        if not attempt.accepted:
            refused.append(_refusal(attempt))
    answer.update(count=len(items), dead_letters=items)
    if refused:
        message = f"{len(refused)} of {len(items)} not redelivered: {refused[0]}"
        return json_response(502, {"error": message, **answer})
    return json_response(200, answer)


def _redeliverer() -> Redeliverer:
    redeliverer: Redeliverer = current_app.extensions[_EXTENSION]
    if redeliverer.broker_url is None:
        raise RequestError(503, "no broker to redeliver to: set K_SINK or BROKER_URL")
    return redeliverer


def _redeliver(
    redeliverer: Redeliverer, found: store.DeadLetter, mode: Mode
) -> tuple[store.Redelivery, dict[str, Any]]:
    """Send one dead letter again and record the attempt; the attempt and the answer's body."""
    service = current_service()
    attempt = redeliverer.redeliver(found, mode)
    with service.transaction() as tx:
        kept = store.record_redelivery(tx.connection, found.id, attempt)
        updated = store.find(tx.connection, found.id) if kept else None
        attempts = store.redeliveries_of(tx.connection, found.id) if kept else []
    return attempt, {
        "redelivery": {**_redelivery(attempt), "to": mode},
        "dead_letter": None if updated is None else _detail(updated, attempts),
    }


def _pending_matching(matches: Predicate) -> list[store.DeadLetter]:
    """The pending dead letters `matches` takes, oldest first; 400 beyond the limit."""
    found: list[store.DeadLetter] = []
    after = 0
    while True:
        with current_service().transaction() as tx:
            page = store.pending_after(tx.connection, after, 500)
        for item in page:
            if not _passes(matches, item.received):
                continue
            if len(found) == MAX_BULK_REDELIVERIES:
                raise RequestError(
                    400,
                    f"the filter matches more than {MAX_BULK_REDELIVERIES} pending dead "
                    "letters, the most one request redelivers: narrow it",
                    "filter",
                    limit=MAX_BULK_REDELIVERIES,
                )
            found.append(item)
        if len(page) < 500:
            return found
        after = page[-1].id


def _passes(matches: Predicate, event: WireEvent) -> bool:
    try:
        return bool(matches(event.attributes))
    except Exception:
        # As Knative treats a filter that fails: no match; the log says so.
        log.exception("the filter failed on dead letter event %s; treated as no match", event.id)
        return False


@routes.delete("/deadletters/<int:dead_letter_id>")
def delete_dead_letter(dead_letter_id: int) -> Response:
    """Discard a dead letter: 204, or 404 when there is none."""
    with current_service().transaction() as tx:
        if not store.delete(tx.connection, dead_letter_id):
            raise RequestError(404, f"no dead letter {dead_letter_id}")
    return Response(status=204)


def _existing(connection: Any, dead_letter_id: int) -> store.DeadLetter:
    found = store.find(connection, dead_letter_id)
    if found is None:
        raise RequestError(404, f"no dead letter {dead_letter_id}")
    return found


def _query(args: Mapping[str, str]) -> store.Query:
    raw_limit = args.get("limit", "100")
    if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_LIMIT:
        raise RequestError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
    state = args.get("state")
    if state not in (None, "pending", "redelivered"):
        raise RequestError(400, "state must be pending or redelivered", "state")
    return store.Query(
        type=args.get("type") or None,
        subject=args.get("subject") or None,
        destination=args.get("destination") or None,
        since=_timestamp(args, "since"),
        until=_timestamp(args, "until"),
        redelivered=None if state is None else state == "redelivered",
        limit=int(raw_limit),
    )


def _timestamp(args: Mapping[str, str], name: str) -> float | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RequestError(
            400, f"{name} must be an RFC 3339 time with an offset, e.g. 2026-01-31T12:00:00Z", name
        )
    return parsed.timestamp()


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _summary(item: store.DeadLetter) -> dict[str, Any]:
    error_data = item.error_data
    event = item.received
    return {
        "id": item.id,
        "event_id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.get("subject"),
        "time": event.get("time"),
        "received_at": _iso(item.received_at),
        "destination": item.destination,
        "error_code": item.error_code,
        "error_data": error_data.text,
        "error_data_truncated": error_data.truncated,
        "redelivered_at": _iso(item.redelivered_at),
    }


def _detail(item: store.DeadLetter, attempts: list[store.Redelivery]) -> dict[str, Any]:
    return {
        **_summary(item),
        "event": to_structured_document(item.original),
        "redeliveries": [_redelivery(attempt) for attempt in attempts],
    }


def _redelivery(attempt: store.Redelivery) -> dict[str, Any]:
    return {
        "attempted_at": _iso(attempt.attempted_at),
        "url": attempt.url,
        "status": attempt.status,
        "outcome": attempt.outcome,
        "response": attempt.response[: store.RESPONSE_KEEP_CHARACTERS],
    }


def _refusal(attempt: store.Redelivery) -> str:
    answer = attempt.response.strip()[:300]
    if attempt.status is None:
        return f"the broker at {attempt.url} did not answer: {answer}"
    return f"the broker at {attempt.url} refused the redelivery with {attempt.status}: {answer}"


def create_app(config: DeadletterConfig | None = None) -> Flask:
    """The deadletter service's WSGI app: `gunicorn "services.deadletter.app:create_app()"`."""
    config = config or DeadletterConfig.from_env()
    # No schema registry: a dead letter is kept whatever its data, valid or not.
    service = create_service(SERVICE, handlers, config=config.kit, migrations=HISTORY)
    assert service.engine is not None
    metrics = DeadLetterMetrics(service.metrics.registry, service.engine)
    service.app.extensions[_EXTENSION] = Redeliverer(
        config.broker_url,
        config.redelivery_timeout_seconds,
        metrics.redeliveries,
        token_file=config.kit.sender_token_file,
        default_mode=config.default_mode,
    )
    service.app.register_blueprint(routes)
    return service.start().app
