"""The topology document (wire.topology) the viewer draws and `shop topology` prints."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wire.knative import Destination, KReference
from wire.knative.filters.description import ALL_EVENTS
from wire.topology import (
    TopologyError,
    broker_json,
    parse_topology,
    parse_topology_text,
    topology_document,
    topology_problems,
    trigger_json,
)


def ksvc(name: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}}


def trigger(name: str, subscriber: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "namespace": "shop",
        "name": name,
        "broker": "default",
        "subscriber": subscriber,
        **fields,
    }


BROKER = {"namespace": "shop", "name": "default", "deadLetterSink": ksvc("deadletter")}
# The shape the chart renders into the viewer's TOPOLOGY.
CHART_DOCUMENT = {
    "brokers": [BROKER],
    "triggers": [
        trigger(
            "inventory-order-created",
            ksvc("inventory"),
            filters=[{"exact": {"type": "order.created"}}],
        ),
        trigger(
            "payment-order-created",
            ksvc("payment"),
            filter={"attributes": {"type": "order.created"}},
            deadLetterSink=ksvc("special-sink"),
        ),
        trigger("viewer-all-events", ksvc("viewer")),
    ],
}


def test_the_charts_document_is_read_by_name_and_in_words() -> None:
    view = parse_topology(CHART_DOCUMENT)
    (broker,) = view.brokers
    assert (broker.namespace, broker.name, broker.dead_letter_sink) == (
        "shop",
        "default",
        "deadletter",
    )
    created, payment, everything = view.triggers
    assert (created.broker, created.subscriber, created.filter, created.dead_letter_sink) == (
        "default",
        "inventory",
        "type = order.created",
        None,
    )
    assert (payment.filter, payment.dead_letter_sink) == ("type = order.created", "special-sink")
    assert everything.filter == ALL_EVENTS


def test_the_local_brokers_document_names_destinations_by_their_url() -> None:
    view = parse_topology(
        {
            "brokers": [
                {
                    "namespace": "shop",
                    "name": "default",
                    "url": "http://127.0.0.1:8080/shop/default",
                    "triggers": ["payment-order-created"],
                }
            ],
            "triggers": [
                trigger(
                    "payment-order-created",
                    {"uri": "http://127.0.0.1:8103"},
                    deadLetterSink={"uri": "http://127.0.0.1:8106"},
                    filters=[{"exact": {"type": "order.created"}}],
                    delivery={"retry": 5, "backoffPolicy": "exponential"},
                    concurrency=32,
                )
            ],
        }
    )
    (route,) = view.triggers
    assert route.subscriber == "http://127.0.0.1:8103"
    assert route.dead_letter_sink == "http://127.0.0.1:8106"
    assert view.brokers[0].dead_letter_sink is None


def test_destinations_are_named_by_their_service() -> None:
    view = parse_topology(
        {
            "brokers": [],
            "triggers": [
                trigger(
                    "a",
                    ksvc("order"),
                    deadLetterSink={"uri": "http://deadletter.shop.svc.cluster.local"},
                ),
                trigger("b", {**ksvc("order"), "uri": "/hooks"}),
                trigger("c", {"uri": "https://example.com/hook"}),
            ],
        }
    )
    assert [route.subscriber for route in view.triggers] == [
        "order",
        "order/hooks",
        "https://example.com/hook",
    ]
    assert view.triggers[0].dead_letter_sink == "deadletter"


def without(document: dict[str, Any], path: str) -> dict[str, Any]:
    """`document` with the field at `triggers.0.name` (say) taken out."""
    changed = copy.deepcopy(document)
    *parents, key = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    del target[key]
    return changed


def replaced(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    *parents, key = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(key) if key.isdigit() else key] = value
    return changed


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ([], "(the document): expected an object, not an array"),
        (without(CHART_DOCUMENT, "brokers"), "brokers: required"),
        (replaced(CHART_DOCUMENT, "triggers", {}), "triggers: expected an array"),
        (without(CHART_DOCUMENT, "triggers.0.subscriber"), "triggers[0].subscriber: required"),
        (without(CHART_DOCUMENT, "triggers.0.name"), "triggers[0].name: required"),
        (without(CHART_DOCUMENT, "triggers.1.namespace"), "triggers[1].namespace: required"),
        (without(CHART_DOCUMENT, "triggers.2.broker"), "triggers[2].broker: required"),
        (without(CHART_DOCUMENT, "brokers.0.name"), "brokers[0].name: required"),
        (replaced(CHART_DOCUMENT, "triggers.0.subscriber", 3), "triggers[0].subscriber"),
        (
            replaced(CHART_DOCUMENT, "triggers.0.subscriber", {}),
            "triggers[0].subscriber: expected at least one of ref and uri",
        ),
        (
            replaced(CHART_DOCUMENT, "triggers.0.subscriber", {"ref": {"name": "inventory"}}),
            "triggers[0].subscriber.ref.apiVersion: required",
        ),
        (
            replaced(CHART_DOCUMENT, "triggers.0.subscriber", {"uri": "/relative"}),
            "triggers[0].subscriber.uri: '/relative': a URI without a ref must be absolute",
        ),
        (
            replaced(CHART_DOCUMENT, "brokers.0.deadLetterSink", {**ksvc("x"), "uri": "http://y/"}),
            "brokers[0].deadLetterSink.uri: 'http://y/': a URI next to a ref must be relative",
        ),
        (
            replaced(CHART_DOCUMENT, "triggers.1.filter", {"attributes": {"type": 1}}),
            "triggers[1].filter.attributes.type: expected a string, not an integer",
        ),
        (
            replaced(CHART_DOCUMENT, "triggers.0.concurrency", 0),
            "triggers[0].concurrency: 0 is less than the minimum of 1",
        ),
        (
            replaced(CHART_DOCUMENT, "triggers.0.colour", "red"),
            "triggers[0].colour: not a field of the topology document",
        ),
    ],
)
def test_a_malformed_document_says_where(document: Any, where: str) -> None:
    with pytest.raises(TopologyError) as raised:
        parse_topology(document)
    assert where in str(raised.value)


def test_the_other_spelling_is_refused_with_the_right_one() -> None:
    snake = replaced(
        without(CHART_DOCUMENT, "triggers.1.deadLetterSink"),
        "triggers.1.dead_letter_sink",
        ksvc("special-sink"),
    )
    with pytest.raises(TopologyError) as raised:
        parse_topology(snake)
    assert str(raised.value) == (
        "not a topology document: triggers[1].dead_letter_sink: not a field of the topology "
        "document (it is spelled deadLetterSink)"
    )


def test_a_destination_given_as_a_bare_name_is_refused() -> None:
    named = replaced(CHART_DOCUMENT, "brokers.0.deadLetterSink", "deadletter")
    with pytest.raises(TopologyError, match=r"brokers\[0\]\.deadLetterSink: expected an object "):
        parse_topology(named)
    assert "a Destination" in topology_problems(named)[0]


def test_every_problem_is_reported_at_once() -> None:
    broken = without(without(CHART_DOCUMENT, "triggers.0.name"), "brokers.0.namespace")
    broken = replaced(broken, "triggers.2.subscriber", "viewer")
    assert topology_problems(broken) == [
        "brokers[0].namespace: required",
        "triggers[0].name: required",
        "triggers[2].subscriber: expected an object (a Destination: a ref and/or a uri), "
        "not a string",
    ]
    assert topology_problems(CHART_DOCUMENT) == []


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(TopologyError, match="not JSON"):
        parse_topology_text("{brokers")


def test_the_view_gives_the_page_names_and_words() -> None:
    assert parse_topology(CHART_DOCUMENT).to_json() == {
        "brokers": [{"namespace": "shop", "name": "default", "deadLetterSink": "deadletter"}],
        "triggers": [
            {
                "namespace": "shop",
                "name": "inventory-order-created",
                "broker": "default",
                "subscriber": "inventory",
                "filter": "type = order.created",
                "deadLetterSink": None,
            },
            {
                "namespace": "shop",
                "name": "payment-order-created",
                "broker": "default",
                "subscriber": "payment",
                "filter": "type = order.created",
                "deadLetterSink": "special-sink",
            },
            {
                "namespace": "shop",
                "name": "viewer-all-events",
                "broker": "default",
                "subscriber": "viewer",
                "filter": ALL_EVENTS,
                "deadLetterSink": None,
            },
        ],
    }


def test_the_builders_write_the_documents_spelling() -> None:
    deadletter = Destination(ref=KReference("serving.knative.dev/v1", "Service", "deadletter"))
    inventory = Destination(ref=KReference("serving.knative.dev/v1", "Service", "inventory"))
    document = topology_document(
        [broker_json("shop", "default", dead_letter_sink=deadletter)],
        [
            trigger_json(
                "shop",
                "inventory-order-created",
                "default",
                inventory,
                spec={"filters": [{"exact": {"type": "order.created"}}], "subscriber": {}},
            )
        ],
    )
    assert document == {
        "brokers": [BROKER],
        "triggers": [CHART_DOCUMENT["triggers"][0]],
    }


def test_a_producer_that_breaks_the_schema_fails_at_once() -> None:
    with pytest.raises(TopologyError, match=r"triggers\[0\]\.subscriber\.uri"):
        topology_document([], [trigger_json("shop", "t", "default", Destination(uri="/x"))])
