"""A kit-built service the kit's tests run under gunicorn (`tests.support.kit_app:create_app()`).

Its handlers exercise each kind of answer: accept, reply, retry later, fail, and a side effect
counted in its own table so that once-only handling can be checked from outside.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent
from flask import Blueprint

from kit import (
    HandlerSet,
    NewEvent,
    RetryLater,
    SchemaRegistry,
    Transaction,
    create_service,
    current_service,
)
from kit.api import BodySchema, json_response
from kit.idempotent_routes import idempotent

metadata = sa.MetaData()
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("note", sa.String(200), nullable=False),
)

SCHEMAS = SchemaRegistry(
    {
        "test.order.placed": {
            "$id": "https://shop.example/schemas/test.order.placed.json",
            "type": "object",
            "required": ["order_id", "amount"],
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
        },
        "test.reply": {"type": "object", "required": ["for"]},
    }
)

# Set by the handler, read by KillBeforeAnswer in the same request thread.
KILL_BEFORE_ANSWER = threading.local()
CONFORMANCE_TYPES = ("io.cloudevents.test", "com.example.someevent", "io.cloudevents.minimum")

handlers = HandlerSet()


def _accept(event: CloudEvent, tx: Transaction) -> None:
    return None


for _type in CONFORMANCE_TYPES:
    handlers.on(_type)(_accept)


@handlers.on("test.effect")
def record_effect(event: CloudEvent, tx: Transaction) -> NewEvent:
    """Writes one row per handling and replies; slow, so that concurrent duplicates overlap."""
    tx.connection.execute(effects.insert().values(event_id=event.get_id(), note="effect"))
    time.sleep(float(os.environ.get("TEST_EFFECT_SECONDS", "0.05")))
    return NewEvent("test.reply", {"for": event.get_id()}, subject=event.get_subject())


@handlers.on("test.order.placed")
def order_placed(event: CloudEvent, tx: Transaction) -> None:
    return None


@handlers.on("test.retry")
def retry_later(event: CloudEvent, tx: Transaction) -> None:
    raise RetryLater("the card processor is busy", retry_after_seconds=3)


@handlers.on("test.crash")
def crash(event: CloudEvent, tx: Transaction) -> None:
    raise ZeroDivisionError("the handler has a bug")


@handlers.on("test.emit")
def emit_two(event: CloudEvent, tx: Transaction) -> None:
    """Emits through the outbox from a handler (trace context must be carried)."""
    tx.emit(NewEvent("test.emitted", {"n": 1}))
    tx.emit(NewEvent("test.emitted", {"n": 2}))


@handlers.on("test.kill")
def kill_after_commit(event: CloudEvent, tx: Transaction) -> NewEvent:
    """Records its effect, then (first time only) has the worker killed before it can answer."""
    tx.connection.execute(effects.insert().values(event_id=event.get_id(), note="kill"))
    marker = os.environ.get("TEST_KILL_MARKER")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        KILL_BEFORE_ANSWER.armed = True
    return NewEvent("test.reply", {"for": event.get_id()})


routes = Blueprint("test_routes", __name__)
PLACE = BodySchema(
    {
        "type": "object",
        "required": ["order_id"],
        "properties": {"order_id": {"type": "string"}, "fail": {"type": "boolean"}},
        "additionalProperties": False,
    }
)


@routes.post("/orders")
@idempotent
def place_order() -> Any:
    """Originates an event through the outbox; `fail: true` rolls the transaction back.

    Takes an Idempotency-Key (kit/idempotent_routes.py).
    """
    body = PLACE.parse()
    with current_service().transaction() as tx:
        tx.connection.execute(effects.insert().values(event_id=body["order_id"], note="order"))
        event_id = tx.emit(
            NewEvent("test.order.placed", {"order_id": body["order_id"], "amount": 3})
        )
        if body.get("fail"):
            raise RuntimeError("rolled back on purpose")
    return json_response(201, {"event_id": event_id})


@routes.get("/effects")
def list_effects() -> Any:
    with current_service().transaction() as tx:
        rows = tx.connection.execute(sa.select(effects.c.event_id, effects.c.note)).all()
    return json_response(200, [{"event_id": r.event_id, "note": r.note} for r in rows])


class KillBeforeAnswer:
    """WSGI wrapper: the transaction has committed, the answer is not sent yet; die here."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        result = self.app(environ, start_response)
        if getattr(KILL_BEFORE_ANSWER, "armed", False):
            os.kill(os.getpid(), signal.SIGKILL)
        return result


def create_app() -> Any:
    service = create_service("kittest", handlers, schemas=SCHEMAS, metadata=metadata)
    service.app.register_blueprint(routes)
    service.app.wsgi_app = KillBeforeAnswer(service.app.wsgi_app)  # type: ignore[method-assign]
    return service.start().app
