"""The table printed when everything answers: services, URLs, the triggers that reach them."""

from __future__ import annotations

import textwrap

from shop.runner.plan import display_names
from shop.runner.table import render, rows
from tests.unit.runner.conftest import LoadTopology, addresses_for
from wire.knative import Destination, KReference

SUBSCRIBER = Destination(ref=KReference("serving.knative.dev/v1", "Service", "order"))


TOPOLOGY = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: shop}
spec:
  delivery:
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: deadletter}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: order, namespace: shop}
spec: {template: {spec: {containers: [{command: [run]}]}}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: deadletter, namespace: shop}
spec: {template: {spec: {containers: [{command: [run]}]}}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: customer, namespace: shop}
spec: {template: {spec: {containers: [{command: [run]}]}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: order-on-payment-authorized, namespace: shop}
spec:
  broker: default
  filter: {attributes: {type: payment.authorized}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: order}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: order-on-inventory, namespace: shop}
spec:
  broker: default
  filters: [{prefix: {type: inventory.}}]
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: order}, uri: /inv}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-the-outside, namespace: shop}
spec:
  broker: default
  subscriber: {uri: "https://hooks.example/in"}
"""


def test_the_table_lists_each_service_with_the_triggers_that_route_to_it(
    topology_of: LoadTopology,
) -> None:
    topology = topology_of(TOPOLOGY)
    addresses = addresses_for(topology)

    lines = render(
        rows(topology, addresses, display_names(topology.services), "smtp://127.0.0.1:2525", "/m")
    )

    # A table is read by its columns; its lines are as long as they need to be.
    assert "\n".join(lines) == textwrap.dedent(
        """\
        SERVICE              URL                                 TRIGGER                      FILTER
        broker shop/default  http://127.0.0.1:8080/shop/default  3 triggers
        smtp                 smtp://127.0.0.1:2525               -                            mail kept in /m
        order                http://127.0.0.1:41000              order-on-payment-authorized  type = payment.authorized
                                                                 order-on-inventory (/inv)    type starts with inventory.
        deadletter           http://127.0.0.1:41001              (dead letters)               failed events of 3 triggers
        customer             http://127.0.0.1:41002              -
        -                    https://hooks.example/in            to-the-outside               all events"""  # noqa: E501
    )
