"""The catalog's types as the Send tab offers them: each a template the consumers accept."""

from __future__ import annotations

import json

from catalog import load_catalog
from services.viewer.app import create_app
from tests.unit.viewer.conftest import viewer_config
from wire.event_form import event_from_form


def test_every_catalog_type_comes_with_its_producer_schema_and_example() -> None:
    client = create_app(viewer_config()).test_client()
    types = client.get("/api/catalog/types").get_json()["types"]
    catalog = load_catalog()
    assert [item["type"] for item in types] == catalog.names()
    created = next(item for item in types if item["type"] == "order.created")
    assert created["source"] == "/shop/order"
    assert created["dataschema"] == "urn:shop:schema:order.created"
    assert created["datacontenttype"] == "application/json"
    assert created["example"] == catalog["order.created"].examples[0]


def test_each_template_makes_an_event_whose_data_its_schema_takes() -> None:
    client = create_app(viewer_config()).test_client()
    catalog = load_catalog()
    for item in client.get("/api/catalog/types").get_json()["types"]:
        event = event_from_form(
            {
                "type": item["type"],
                "source": item["source"],
                "datacontenttype": item["datacontenttype"],
                "data": json.dumps(item["example"]),
                "extensions": {"dataschema": item["dataschema"]},
            }
        )
        assert event.attributes["dataschema"] == item["dataschema"]
        assert event.data is not None
        catalog.registry.validate(item["type"], json.loads(event.data))  # raises if refused
