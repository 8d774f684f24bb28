"""What `shop up` says about the manifests before it starts: ignored kinds, not-ready objects."""

from __future__ import annotations

import io

from shop.runner.console import Console
from shop.runner.up import report_topology
from tests.unit.runner.conftest import LoadTopology

TOPOLOGY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgresql, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mailpit, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: postgresql, namespace: shop}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: shop}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-nowhere, namespace: shop}
spec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: absent}}
"""


def test_ignored_kinds_are_listed_once_each_and_not_ready_objects_are_shown(
    topology_of: LoadTopology,
) -> None:
    output = io.StringIO()

    report_topology(topology_of(TOPOLOGY), Console(output, colour=False))

    assert output.getvalue().splitlines() == [
        "shop up: ignored (not run locally): Deployment (apps/v1): postgresql, mailpit",
        "shop up: ignored (not run locally): NetworkPolicy (networking.k8s.io/v1): postgresql",
        "shop up: not ready: Trigger shop/to-nowhere: SubscriberNotResolved: Service shop/absent "
        "(serving.knative.dev/v1) is not a Knative Service or Broker defined in the manifests",
    ]
