"""`shop asyncapi`: the AsyncAPI document (catalog.asyncapi) of the catalog on a manifest folder.

The manifests give what the document builder takes: the topology document (the Brokers and
Triggers, as `shop topology` reads them), which Broker each service's SinkBinding sends to,
the chart's version label and the brokers' addresses in a cluster and under `shop up`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from catalog import Catalog
from catalog.asyncapi import Sender, asyncapi_document
from shop.inspect.topology import manifests_document
from shop.manifests import Topology
from shop.manifests.eventing import DEFAULT_BROKER_CLASS
from shop.manifests.topology import BROKER_API_VERSION
from shop.runner.addresses import BROKER_INGRESS_HOST, LOCAL_HOST
from shop.runner.config import DEFAULT_PORT

VERSION_LABEL = "app.kubernetes.io/version"


def manifests_asyncapi(topology: Topology, catalog: Catalog) -> dict[str, Any]:
    """The AsyncAPI document of `catalog` on the admitted manifests `topology`."""
    return asyncapi_document(
        catalog,
        manifests_document(topology),
        senders(topology),
        version=_version(topology),
        servers=_servers(topology),
    )


def senders(topology: Topology) -> list[Sender]:
    """Each Knative Service whose SinkBinding's sink is a Broker (its K_SINK), with that Broker."""
    found: list[Sender] = []
    for service in topology.services:
        binding = topology.sink_binding_for(service)
        ref = None if binding is None else binding.sink.ref
        if (
            binding is None
            or ref is None
            or (ref.api_version, ref.kind)
            != (
                BROKER_API_VERSION,
                "Broker",
            )
        ):
            continue
        found.append(Sender(service.name, ref.namespace or binding.namespace, ref.name))
    return found


def _version(topology: Topology) -> str:
    """The chart's app version as it labels the Broker, else this package's version."""
    for broker in topology.brokers:
        if broker.labels.get(VERSION_LABEL):
            return broker.labels[VERSION_LABEL]
    try:
        return package_version("knative-shop")
    except PackageNotFoundError:
        return "0.0.0"


def _servers(topology: Topology) -> dict[str, dict[str, Any]]:
    """The local broker of `shop up`, and the cluster's ingress when the brokers are Knative's
    multi-tenant ones (other classes have an ingress of their own)."""
    servers: dict[str, dict[str, Any]] = {}
    if topology.brokers and all(
        broker.broker_class == DEFAULT_BROKER_CLASS for broker in topology.brokers
    ):
        servers["cluster"] = {
            "host": BROKER_INGRESS_HOST,
            "protocol": "http",
            "title": "Knative's broker ingress",
            "description": (
                f"The {DEFAULT_BROKER_CLASS} ingress in the cluster: a Broker's events are "
                "posted to /<namespace>/<broker> on it."
            ),
        }
    servers["local"] = {
        "host": f"{LOCAL_HOST}:{DEFAULT_PORT}",
        "protocol": "http",
        "title": "shop up",
        "description": (
            "The local broker of `shop up` (`make up`), on its default port, at the same paths."
        ),
    }
    return servers
