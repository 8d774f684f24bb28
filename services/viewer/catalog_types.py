"""`GET /api/catalog/types`: the event catalog's types, each with a template for the Send tab.

Each type comes with what an event of it carries (`source` of its producer, `dataschema`,
`datacontenttype`) and its schema's first example as `data`, so that choosing a type on the
page fills the form with an event the consumers accept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from catalog import EventType, load_catalog
from kit.api import json_response

CONTENT_TYPE = "application/json"

routes = Blueprint("viewer_catalog_types", __name__)


@routes.get("/api/catalog/types")
def list_catalog_types() -> Response:
    """Every catalog type, sorted by name, with its description, producer and template."""
    return json_response(200, {"types": [type_json(entry) for entry in load_catalog()]})


def type_json(entry: EventType) -> dict[str, Any]:
    """One type and the event the Send tab fills in for it."""
    return {
        "type": entry.type,
        "description": entry.description,
        "producer": entry.producer,
        "source": f"/shop/{entry.producer}",
        "dataschema": entry.schema_uri,
        "datacontenttype": CONTENT_TYPE,
        "example": entry.examples[0],
        "examples": list(entry.examples),
    }
