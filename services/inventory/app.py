"""The inventory service: `GET|PUT /stock/<sku>`; reserves, sells and releases for orders."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response

from catalog import SKU_PATTERN, load_catalog
from kit import KitConfig, RequestError, create_service, current_service
from kit.api import BodySchema, json_response
from kit.openapi import ERROR, LOCATION, Operation, Reply, describe
from services.inventory import store
from services.inventory.handlers import handlers
from services.inventory.migrations import HISTORY
from wire.strings import quote

SERVICE = "inventory"


SET_STOCK = BodySchema(
    {
        "type": "object",
        "required": ["available"],
        "properties": {"available": {"type": "integer", "minimum": 0, "maximum": 10**12}},
        "additionalProperties": False,
    }
)

_UNITS = {"type": "integer", "minimum": 0}
STOCK_VIEW = {
    "type": "object",
    "required": ["sku", "available", "reserved", "sold", "stocked", "updated_at"],
    "properties": {
        "sku": {"type": "string"},
        "available": _UNITS,
        "reserved": _UNITS,
        "sold": _UNITS,
        "stocked": _UNITS,
        "updated_at": {"type": "string"},
    },
}

routes = Blueprint("inventory", __name__)
describe(
    routes,
    {
        ("GET", "/stock/<sku>"): Operation(
            "A sku's units", responses={200: Reply(STOCK_VIEW), 404: ERROR}
        ),
        ("PUT", "/stock/<sku>"): Operation(
            "Set the units available for new reservations",
            request=SET_STOCK,
            path={"sku": {"type": "string", "pattern": SKU_PATTERN}},
            responses={
                200: Reply(STOCK_VIEW, "the sku's units"),
                201: Reply(STOCK_VIEW, "a new sku's units", headers=LOCATION),
            },
        ),
    },
)


@routes.get("/stock/<sku>")
def show_stock(sku: str) -> Response:
    """A sku's units: available, reserved, sold and stocked (their sum), or 404."""
    with current_service().transaction() as tx:
        found = store.find_stock(tx.connection, sku)
    if found is None:
        raise RequestError(404, f"no stock of sku {quote(sku)}")
    return json_response(200, _view(found))


@routes.put("/stock/<sku>")
def set_stock(sku: str) -> Response:
    """Set the units available for new reservations (201 for a new sku, else 200).

    Units reserved by pending orders and units sold are left alone; `stocked` changes by as much
    as `available` does.
    """
    _check_sku(sku)
    body = SET_STOCK.parse()
    with current_service().transaction() as tx:
        found, created = store.set_available(tx.connection, sku, int(body["available"]))
    if created:
        return json_response(201, _view(found), {"Location": f"/stock/{sku}"})
    return json_response(200, _view(found))


def _check_sku(sku: str) -> None:
    if not re.fullmatch(SKU_PATTERN, sku):
        raise RequestError(
            400, f"sku {quote(sku)} must be 1-64 letters, digits, '.', '_' or '-'", field="sku"
        )


def _view(found: store.Stock) -> dict[str, Any]:
    return {
        "sku": found.sku,
        "available": found.available,
        "reserved": found.reserved,
        "sold": found.sold,
        "stocked": found.stocked,
        "updated_at": found.updated_at,
    }


def create_app(config: KitConfig | None = None) -> Flask:
    """The inventory service's WSGI app: `gunicorn "services.inventory.app:create_app()"`."""
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
