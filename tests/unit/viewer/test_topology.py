"""The topology document the viewer draws and `shop topology` prints."""

from __future__ import annotations

from typing import Any

import pytest

from services.viewer.topology import TopologyError, parse_topology, parse_topology_text
from wire.knative.filters.description import ALL_EVENTS


def test_the_chart_shape_is_read_with_defaults_filled_in() -> None:
    view = parse_topology(
        {
            "brokers": [{"name": "default", "deadLetterSink": "deadletter"}],
            "triggers": [
                {
                    "name": "inventory-order-created",
                    "subscriber": "inventory",
                    "filters": [{"exact": {"type": "order.created"}}],
                },
                {"name": "viewer-all-events", "subscriber": "viewer"},
            ],
        }
    )
    assert view.brokers[0].namespace == "shop" and view.brokers[0].dead_letter_sink == "deadletter"
    created, everything = view.triggers
    assert (created.broker, created.subscriber, created.filter) == (
        "default",
        "inventory",
        "type = order.created",
    )
    assert everything.filter == ALL_EVENTS


def test_the_local_brokers_admin_shape_is_read_too() -> None:
    view = parse_topology(
        {
            "brokers": [
                {
                    "namespace": "shop",
                    "name": "default",
                    "url": "http://127.0.0.1:8080/shop/default",
                }
            ],
            "triggers": [
                {
                    "namespace": "shop",
                    "name": "payment-order-created",
                    "broker": "default",
                    "subscriber": "http://127.0.0.1:8103",
                    "dead_letter_sink": "http://127.0.0.1:8106",
                    "filters": [{"exact": {"type": "order.created"}}],
                    "delivery": {"retry": 5},
                }
            ],
        }
    )
    (route,) = view.triggers
    assert route.subscriber == "http://127.0.0.1:8103"
    assert route.dead_letter_sink == "http://127.0.0.1:8106"


def test_destinations_are_named_by_their_service() -> None:
    view = parse_topology(
        {
            "triggers": [
                {
                    "name": "a",
                    "subscriber": {"ref": {"kind": "Service", "name": "order"}},
                    "deadLetterSink": "http://deadletter.shop.svc.cluster.local",
                },
                {"name": "b", "subscriber": {"ref": {"name": "order"}, "uri": "/hooks"}},
                {"name": "c", "subscriber": {"uri": "https://example.com/hook"}},
            ]
        }
    )
    assert [route.subscriber for route in view.triggers] == [
        "order",
        "order/hooks",
        "https://example.com/hook",
    ]
    assert view.triggers[0].dead_letter_sink == "deadletter"
    assert [(b.namespace, b.name) for b in view.brokers] == [("shop", "default")]


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ([], "JSON object"),
        ({"triggers": {}}, "triggers: expected a list"),
        ({"triggers": [{"name": "a"}]}, "triggers[0].subscriber: required"),
        ({"triggers": [{"subscriber": "x"}]}, "triggers[0].name"),
        ({"triggers": [{"name": "a", "subscriber": 3}]}, "triggers[0].subscriber"),
        ({"brokers": [{"namespace": "shop"}]}, "brokers[0].name"),
    ],
)
def test_a_malformed_document_says_where(document: Any, where: str) -> None:
    with pytest.raises(TopologyError) as raised:
        parse_topology(document)
    assert where in str(raised.value)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(TopologyError, match="not JSON"):
        parse_topology_text("{brokers")


def test_to_json_round_trips_through_parse() -> None:
    view = parse_topology(
        {
            "brokers": [{"name": "default", "deadLetterSink": "deadletter"}],
            "triggers": [{"name": "t", "subscriber": "s", "filters": [{"exact": {"type": "x"}}]}],
        }
    )
    again = parse_topology(view.to_json())
    assert again.brokers == view.brokers
    assert [(r.name, r.subscriber) for r in again.triggers] == [("t", "s")]
