"""The event catalog: one schema per saga type, with its producer, description and examples."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from catalog import SKU_PATTERN, CatalogError, load_catalog
from kit.schemas import DataError

# The producers of docs/design.md's contract table.
PRODUCERS = {
    "user.created": "customer",
    "order.created": "order",
    "order.confirmed": "order",
    "order.cancelled": "order",
    "inventory.reserved": "inventory",
    "inventory.rejected": "inventory",
    "inventory.released": "inventory",
    "payment.authorized": "payment",
    "payment.declined": "payment",
    "payment.voided": "payment",
    "notification.sent": "notification",
}


def test_the_catalog_lists_every_event_type_with_its_producer() -> None:
    catalog = load_catalog()
    assert catalog.producers() == dict(sorted(PRODUCERS.items()))
    assert catalog.produced_by("inventory") == [
        "inventory.rejected",
        "inventory.released",
        "inventory.reserved",
    ]


@pytest.mark.parametrize("event_type", sorted(PRODUCERS))
def test_each_type_has_its_urn_a_description_and_valid_examples(event_type: str) -> None:
    entry = load_catalog()[event_type]
    assert entry.schema_uri == f"urn:shop:schema:{event_type}"
    assert entry.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert entry.description and "\n" not in entry.description
    assert entry.examples
    for example in entry.examples:
        load_catalog().registry.validate(event_type, example)


def test_the_registry_gives_the_dataschema_and_refuses_bad_data() -> None:
    registry = load_catalog().registry
    assert registry.uri("order.created") == "urn:shop:schema:order.created"
    example = dict(load_catalog()["order.created"].examples[0])
    example["total"] = "21.00"
    with pytest.raises(DataError, match="total"):
        registry.validate("order.created", example)


@pytest.mark.parametrize("event_type", sorted(set(PRODUCERS) - {"user.created"}))
def test_every_saga_event_carries_the_order_id(event_type: str) -> None:
    schema = load_catalog()[event_type].schema
    if event_type == "notification.sent":
        assert "notification_id" in schema["required"]
        return
    assert "order_id" in schema["required"]


def test_amounts_are_integers_in_minor_units() -> None:
    schema = load_catalog()["order.created"].schema
    line = schema["properties"]["lines"]["items"]["properties"]
    assert line["unit_price"]["type"] == "integer"
    assert schema["properties"]["total"]["type"] == "integer"
    with pytest.raises(DataError, match="unit_price"):
        example = json.loads(json.dumps(load_catalog()["order.created"].examples[0]))
        example["lines"][0]["unit_price"] = 4.5
        load_catalog().registry.validate("order.created", example)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"$id": "urn:shop:schema:other"}, r"\$id must be"),
        ({"x-producer": ""}, "x-producer"),
        ({"description": None}, "description"),
        ({"examples": []}, "examples"),
        ({"examples": [{"order_id": 7}]}, r"examples\[0\] is invalid"),
        ({"type": "thing"}, "not a valid draft 2020-12 schema"),
    ],
)
def test_a_schema_that_breaks_the_catalog_rules_is_refused_with_its_file(
    tmp_path: Path, change: dict[str, object], complaint: str
) -> None:
    schema: dict[str, object] = {
        "$id": "urn:shop:schema:thing.happened",
        "description": "A thing happened.",
        "x-producer": "things",
        "type": "object",
        "required": ["order_id"],
        "properties": {"order_id": {"type": "string"}},
        "examples": [{"order_id": "o-1"}],
    }
    schema.update(change)
    (tmp_path / "thing.happened.json").write_text(json.dumps(schema))
    with pytest.raises(CatalogError, match=complaint) as caught:
        load_catalog(tmp_path)
    assert "thing.happened.json" in str(caught.value)


def test_an_empty_directory_is_not_a_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no event schemas"):
        load_catalog(tmp_path)


# The Triggers of docs/design.md's contract table: what each service consumes.
CONSUMES = {
    "customer": set(),
    "order": {"inventory.reserved", "inventory.rejected", "payment.authorized", "payment.declined"},
    "inventory": {"order.created", "order.confirmed", "order.cancelled"},
    "payment": {"order.created", "order.cancelled"},
    "notification": {"user.created", "order.confirmed", "order.cancelled"},
}


@pytest.mark.parametrize("service", sorted(CONSUMES))
def test_each_service_handles_exactly_the_types_its_triggers_deliver(service: str) -> None:
    handlers = importlib.import_module(f"services.{service}.handlers").handlers
    assert set(handlers.by_type) == CONSUMES[service]
    assert handlers.fallback is None
    assert set(handlers.by_type) <= set(load_catalog().types)


def _sku_properties(node: object) -> list[object]:
    """Every schema under a `sku` property, at any depth."""
    if isinstance(node, dict):
        found = [node["properties"]["sku"]] if "sku" in node.get("properties", {}) else []
        return found + [sku for value in node.values() for sku in _sku_properties(value)]
    if isinstance(node, list):
        return [sku for value in node for sku in _sku_properties(value)]
    return []


def test_every_sku_in_event_data_follows_the_one_sku_rule() -> None:
    skus = [sku for entry in load_catalog() for sku in _sku_properties(dict(entry.schema))]
    assert len(skus) >= 4  # order.created, order.confirmed, inventory.reserved/released
    assert all(sku == {"type": "string", "pattern": SKU_PATTERN} for sku in skus), skus
