"""The AsyncAPI document (catalog.asyncapi): the catalog's types on the brokers of the manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from catalog import load_catalog
from catalog.asyncapi import (
    DOCUMENT_FILE,
    AsyncApiError,
    Sender,
    asyncapi_document,
    document_text,
    load_document,
)
from catalog.asyncapi_messages import ATTRIBUTES
from catalog.loader import SCHEMAS_DIR
from shop.inspect.asyncapi import manifests_asyncapi
from shop.manifests import load_topology
from tests.conftest import REPO_ROOT
from wire.spec import OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES

MANIFESTS = REPO_ROOT / "manifests"


def ksvc(name: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}}


def topology(*triggers: dict[str, Any]) -> dict[str, Any]:
    return {"brokers": [{"namespace": "shop", "name": "default"}], "triggers": list(triggers)}


def trigger(name: str, subscriber: str, **fields: Any) -> dict[str, Any]:
    return {
        "namespace": "shop",
        "name": name,
        "broker": "default",
        "subscriber": ksvc(subscriber),
        **fields,
    }


def refs(operation: dict[str, Any]) -> list[str]:
    return [ref["$ref"].rsplit("/", 1)[-1] for ref in operation["messages"]]


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    """The document of manifests/ and the shipped catalog, made now."""
    return manifests_asyncapi(load_topology(MANIFESTS), load_catalog())


def test_the_checked_in_document_is_the_one_the_manifests_and_the_catalog_make(
    generated: dict[str, Any],
) -> None:
    checked_in = DOCUMENT_FILE.read_text(encoding="utf-8")
    assert checked_in == document_text(generated), (
        "catalog/asyncapi.json is stale (the catalog or the manifests changed): run `make asyncapi`"
    )
    assert load_document() == generated


def test_every_catalog_type_is_a_message_of_the_broker_channel(generated: dict[str, Any]) -> None:
    catalog = load_catalog()
    messages = generated["components"]["messages"]
    assert sorted(messages) == catalog.names()
    (channel,) = generated["channels"].values()
    assert channel["address"] == "/shop/default"
    assert sorted(channel["messages"]) == catalog.names()
    for entry in catalog:
        message = messages[entry.type]
        assert message["summary"] == entry.description
        assert message["x-producer"] == entry.producer
        payload = generated["components"]["schemas"][entry.type]
        assert payload == {k: v for k, v in entry.schema.items() if k != "$schema"}


def test_every_trigger_of_the_manifests_is_a_receive_operation_of_its_subscriber(
    generated: dict[str, Any],
) -> None:
    catalog = load_catalog()
    operations = generated["operations"]
    triggers = load_topology(MANIFESTS).triggers
    assert triggers
    for item in triggers:
        operation = operations[f"receive.{item.name}"]
        assert operation["action"] == "receive"
        assert operation["x-service"] == item.subscriber.ref.name  # type: ignore[union-attr]
        assert operation["bindings"]["http"]["method"] == "POST"
        # The chart's two shapes: one exact type, or no filter at all (the viewer).
        if item.filters:
            assert item.filters == ({"exact": {"type": refs(operation)[0]}},)
            assert len(refs(operation)) == 1
        else:
            assert refs(operation) == catalog.names()
    receives = {key for key, op in operations.items() if key.startswith("receive.")}
    assert receives == {f"receive.{item.name}" for item in triggers}


def test_each_producer_sends_what_the_catalog_says_it_produces(generated: dict[str, Any]) -> None:
    catalog = load_catalog()
    sends = {
        operation["x-service"]: refs(operation)
        for operation in generated["operations"].values()
        if operation["action"] == "send"
    }
    assert sends == {
        service: catalog.produced_by(service) for service in set(catalog.producers().values())
    }
    for operation in generated["operations"].values():
        assert operation["bindings"] == {"http": {"method": "POST", "bindingVersion": "0.3.0"}}


def test_a_subscriber_that_produces_replies_with_its_types_and_the_viewer_does_not(
    generated: dict[str, Any],
) -> None:
    operations = generated["operations"]
    reply = operations["receive.inventory-order-created"]["reply"]
    assert refs(reply) == ["inventory.rejected", "inventory.released", "inventory.reserved"]
    assert "reply" not in operations["receive.viewer-all-events"]
    assert "SinkBinding" not in operations["send.inventory"]["description"]
    assert "SinkBinding" in operations["send.order"]["description"]


def test_the_dead_letter_sink_receives_what_its_triggers_receive(
    generated: dict[str, Any],
) -> None:
    operation = generated["operations"]["dead-letters.deadletter"]
    assert operation["x-service"] == "deadletter"
    assert refs(operation) == load_catalog().names()


def test_the_headers_are_the_cloudevents_attributes_in_binary_mode(
    generated: dict[str, Any],
) -> None:
    assert set(REQUIRED_ATTRIBUTES + OPTIONAL_ATTRIBUTES) <= set(ATTRIBUTES)
    headers = generated["components"]["schemas"]["order.created.headers"]
    assert headers["required"] == ["ce-id", "ce-source", "ce-specversion", "ce-type"]
    assert headers["properties"]["ce-type"]["const"] == "order.created"
    assert headers["properties"]["ce-dataschema"]["const"] == "urn:shop:schema:order.created"
    assert headers["properties"]["ce-specversion"]["const"] == "1.0"
    # datacontenttype is the Content-Type header, a protocol header: the HTTP binding's.
    assert "ce-datacontenttype" not in headers["properties"]
    binding = generated["components"]["messages"]["order.created"]["bindings"]["http"]
    assert binding["headers"]["properties"]["Content-Type"]["const"] == "application/json"


@pytest.mark.parametrize("event_type", load_catalog().names())
def test_each_example_is_valid_against_its_headers_and_payload_schemas(
    generated: dict[str, Any], event_type: str
) -> None:
    schemas = generated["components"]["schemas"]
    (example,) = generated["components"]["messages"][event_type]["examples"]
    assert example["headers"]["ce-type"] == event_type
    # Every attribute the kit sends is documented (ATTRIBUTES), none slips through undescribed.
    assert set(example["headers"]) <= set(schemas[f"{event_type}.headers"]["properties"])
    assert example["headers"]["ce-source"] == f"/shop/{load_catalog()[event_type].producer}"
    header_problems = list(
        Draft7Validator(schemas[f"{event_type}.headers"]).iter_errors(example["headers"])
    )
    assert header_problems == []
    assert list(Draft7Validator(schemas[event_type]).iter_errors(example["payload"])) == []
    assert example["payload"] == load_catalog()[event_type].examples[0]


def test_a_cesql_filter_receives_the_catalog_types_it_passes() -> None:
    document = asyncapi_document(
        load_catalog(),
        topology(
            trigger("audit-orders", "audit", filters=[{"cesql": "type LIKE 'order.%'"}]),
            trigger("customer-waits", "customer", filters=[{"exact": {"type": "user.created"}}]),
            trigger("inventory-all", "inventory"),
            trigger("payment-all", "payment"),
            trigger("notification-all", "notification"),
            trigger("order-all", "order"),
        ),
        [],
        version="1",
    )
    receive = document["operations"]["receive.audit-orders"]
    assert refs(receive) == ["order.cancelled", "order.confirmed", "order.created"]
    assert receive["x-service"] == "audit"
    assert "reply" not in receive
    assert "type LIKE 'order.%'" in receive["description"]


def test_a_producer_with_neither_a_sink_nor_a_trigger_is_refused() -> None:
    with pytest.raises(AsyncApiError, match=r"payment produces payment\.authorized"):
        asyncapi_document(
            load_catalog(),
            topology(trigger("inventory-all", "inventory")),
            [Sender(name, "shop", "default") for name in ("customer", "order", "notification")],
            version="1",
        )


def test_a_sender_to_a_broker_not_in_the_topology_is_refused() -> None:
    senders = [
        Sender(name, "shop", "default")
        for name in ("order", "inventory", "payment", "notification")
    ]
    with pytest.raises(AsyncApiError, match="the sink of customer: Broker shop/elsewhere"):
        asyncapi_document(
            load_catalog(),
            topology(),
            [*senders, Sender("customer", "shop", "elsewhere")],
            version="1",
        )


def test_a_trigger_that_passes_no_catalog_type_is_refused() -> None:
    senders = [Sender(name, "shop", "default") for name in set(load_catalog().producers().values())]
    with pytest.raises(AsyncApiError, match=r"Trigger shop/audit-pings \(type = demo\.ping\)"):
        asyncapi_document(
            load_catalog(),
            topology(trigger("audit-pings", "audit", filters=[{"exact": {"type": "demo.ping"}}])),
            senders,
            version="1",
        )


def test_a_payload_schema_with_a_keyword_draft_07_reads_otherwise_is_refused(
    tmp_path: Path,
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    path = schemas / "user.created.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["name"]["$defs"] = {"unused": {"type": "string"}}
    path.write_text(json.dumps(schema), encoding="utf-8")
    senders = [Sender(name, "shop", "default") for name in set(load_catalog().producers().values())]
    with pytest.raises(AsyncApiError, match=r"user\.created\.json uses \$defs"):
        asyncapi_document(load_catalog(schemas), topology(), senders, version="1")
