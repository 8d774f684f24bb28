"""The viewer's TOPOLOGY: the one topology document (wire/topology.schema.json), as rendered."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.chart.rendering import VALUE_SETS, Document, by_name, env_of, knative_services, of_kind
from tests.chart.rendering import render as render_chart
from tests.conftest import REPO_ROOT
from wire.topology import parse_topology, topology_problems

SCHEMA = json.loads((REPO_ROOT / "wire" / "topology.schema.json").read_text(encoding="utf-8"))
# Trigger delivery overrides give some Triggers a dead-letter sink of their own.
OVERRIDES = [
    "services.payment.delivery.retry=2",
    r"services.inventory.triggerDelivery.order\.created.retry=1",
]


def topology_of(docs: list[Document]) -> Any:
    return json.loads(env_of(knative_services(docs)["viewer"])["TOPOLOGY"])


@pytest.mark.parametrize(
    ("value_set", "set_values"),
    [(name, []) for name in VALUE_SETS] + [("default", OVERRIDES)],
    ids=[*VALUE_SETS, "trigger-overrides"],
)
def test_the_rendered_topology_matches_the_schema_and_the_triggers(
    helm: str, value_set: str, set_values: list[str]
) -> None:
    docs = render_chart(helm, value_set, set_values)
    document = topology_of(docs)
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors == [], [error.message for error in errors]
    assert topology_problems(document) == []
    (broker,) = of_kind(docs, "Broker")
    assert document["brokers"] == [
        {
            "namespace": broker["metadata"]["namespace"],
            "name": broker["metadata"]["name"],
            "deadLetterSink": broker["spec"]["delivery"]["deadLetterSink"],
        }
    ]
    triggers = by_name(of_kind(docs, "Trigger"))
    assert sorted(item["name"] for item in document["triggers"]) == sorted(triggers)
    for item in document["triggers"]:
        spec = triggers[item["name"]]["spec"]
        assert item["subscriber"] == spec["subscriber"], item["name"]
        assert item.get("deadLetterSink") == spec.get("delivery", {}).get("deadLetterSink")
        for key in ("filter", "filters"):
            assert item.get(key) == spec.get(key), item["name"]


def test_trigger_overrides_give_the_document_their_own_dead_letter_sinks(helm4: str) -> None:
    view = parse_topology(topology_of(render_chart(helm4, "default", OVERRIDES)))
    own = {route.name: route.dead_letter_sink for route in view.triggers if route.dead_letter_sink}
    assert own == {
        "inventory-order-created": "deadletter",
        "payment-order-created": "deadletter",
        "payment-order-cancelled": "deadletter",
    }
    assert [broker.dead_letter_sink for broker in view.brokers] == ["deadletter"]
