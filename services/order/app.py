"""The order service: `POST /orders`, `GET /orders/<id>`; decides orders from saga outcomes."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response

from catalog import SKU_PATTERN, load_catalog
from kit import KitConfig, NewEvent, RequestError, create_service, current_service
from kit.api import BodySchema, json_response
from kit.idempotent_routes import idempotent
from kit.openapi import ERROR, LOCATION, Operation, Reply, describe
from services.order import store
from services.order.handlers import handlers
from services.order.migrations import HISTORY
from wire.strings import quote

SERVICE = "order"
MAX_LINES = 100


ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
NEW_ORDER = BodySchema(
    {
        "type": "object",
        "required": ["customer_id", "lines", "currency", "payment_token"],
        "properties": {
            "customer_id": {"type": "string", "pattern": ID_PATTERN},
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LINES,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity", "unit_price"],
                    "properties": {
                        "sku": {"type": "string", "pattern": SKU_PATTERN},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
                        "unit_price": {"type": "integer", "minimum": 0, "maximum": 100000000},
                    },
                    "additionalProperties": False,
                },
            },
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "payment_token": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "additionalProperties": False,
    }
)

_TEXT_OR_NULL = {"type": ["string", "null"]}
_LINE = {
    "type": "object",
    "required": ["sku", "quantity", "unit_price"],
    "properties": {
        "sku": {"type": "string"},
        "quantity": {"type": "integer"},
        "unit_price": {"type": "integer"},
    },
}
#: An order as `_view` shows it; customer_id, currency and total are null only for an order
#: this service never placed (outcomes arrived for an unknown id).
ORDER_VIEW = {
    "type": "object",
    "required": [
        *("id", "status", "code", "reason", "customer_id", "currency", "total", "lines"),
        *("inventory", "payment", "created_at", "updated_at", "events"),
    ],
    "properties": {
        "id": {"type": "string"},
        "status": {"enum": [store.PENDING, store.CONFIRMED, store.CANCELLED]},
        "code": _TEXT_OR_NULL,
        "reason": _TEXT_OR_NULL,
        "customer_id": _TEXT_OR_NULL,
        "currency": _TEXT_OR_NULL,
        "total": {"type": ["integer", "null"]},
        "lines": {"type": "array", "items": _LINE},
        "inventory": _TEXT_OR_NULL,
        "payment": _TEXT_OR_NULL,
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["direction", "type", "id", "source", "at"],
                "properties": {
                    "direction": {"enum": ["received", "sent"]},
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "source": {"type": "string"},
                    "at": {"type": "string"},
                },
            },
        },
    },
}

routes = Blueprint("order", __name__)
describe(
    routes,
    {
        ("POST", "/orders"): Operation(
            "Place an order (order.created through the outbox)",
            request=NEW_ORDER,
            responses={201: Reply(ORDER_VIEW, "the pending order", headers=LOCATION)},
        ),
        ("GET", "/orders/<order_id>"): Operation(
            "An order: status, lines and the events seen",
            responses={200: Reply(ORDER_VIEW), 404: ERROR},
        ),
    },
)


@routes.post("/orders")
@idempotent
def place_order() -> Response:
    """Place an order: 201 with the pending order and Location; `order.created` via the outbox."""
    body = NEW_ORDER.parse()
    lines = _lines(body["lines"])
    order_id = str(uuid.uuid4())
    total = sum(line.quantity * line.unit_price for line in lines)
    with current_service().transaction() as tx:
        store.insert_order(tx.connection, order_id, body["customer_id"], body["currency"], lines)
        event_id = tx.emit(
            NewEvent(
                "order.created",
                {
                    "order_id": order_id,
                    "customer_id": body["customer_id"],
                    "lines": [
                        {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                        for line in lines
                    ],
                    "currency": body["currency"],
                    "total": total,
                    "payment_token": body["payment_token"],
                },
                subject=order_id,
            )
        )
        store.record_event(
            tx.connection, order_id, "sent", event_type="order.created", event_id=event_id
        )
        view = _view(tx.connection, order_id)
    return json_response(201, view, {"Location": f"/orders/{order_id}"})


@routes.get("/orders/<order_id>")
def show_order(order_id: str) -> Response:
    """An order's status (with the reason when cancelled), lines and the events seen, or 404."""
    with current_service().transaction() as tx:
        view = _view(tx.connection, order_id)
    return json_response(200, view)


def _lines(raw: list[dict[str, Any]]) -> list[store.Line]:
    """The order's lines; a sku may appear once (inventory reserves per sku)."""
    seen: set[str] = set()
    lines = []
    for index, line in enumerate(raw):
        if line["sku"] in seen:
            raise RequestError(
                400, f"sku {quote(line['sku'])} appears in more than one line", f"lines/{index}/sku"
            )
        seen.add(line["sku"])
        # JSON Schema counts 2.0 as an integer: store it as one.
        lines.append(store.Line(line["sku"], int(line["quantity"]), int(line["unit_price"])))
    return lines


def _view(connection: sa.Connection, order_id: str) -> dict[str, Any]:
    order = store.find_order(connection, order_id)
    if order is None:
        raise RequestError(404, f"no order {quote(order_id)}")
    return {
        "id": order.id,
        "status": order.status,
        "code": order.code,
        "reason": order.reason,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "total": order.total,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in store.lines_of(connection, order_id)
        ],
        "inventory": order.inventory,
        "payment": order.payment,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "events": [
            # What this service sent carries its own source.
            {**seen, "source": seen["source"] or current_service().config.source}
            for seen in store.events_of(connection, order_id)
        ],
    }


def create_app(config: KitConfig | None = None) -> Flask:
    """The order service's WSGI app: `gunicorn "services.order.app:create_app()"`."""
    service = create_service(
        SERVICE,
        handlers,
        config=config or KitConfig.from_env(SERVICE),
        schemas=load_catalog().registry,
        migrations=HISTORY,
        # Its events' subject is the order id: as `partitionkey`, an order's events stay in order.
        partition_by_subject=True,
    )
    service.app.register_blueprint(routes)
    return service.start().app
