"""`shop topology`: the trigger graph of a manifest folder, as text or as a Mermaid flowchart.

The manifests become the topology document the viewer draws (wire.topology), so the filter
words and the names are the same in the terminal and on the page.
"""

from __future__ import annotations

import re
from typing import Any

from shop.manifests import Topology
from wire.topology import (
    TopologyView,
    broker_json,
    parse_topology,
    topology_document,
    trigger_json,
)


def manifests_document(topology: Topology) -> dict[str, Any]:
    """The topology document of admitted manifests: destinations as the manifests state them."""
    return topology_document(
        [
            broker_json(
                broker.namespace,
                broker.name,
                dead_letter_sink=broker.delivery.dead_letter_sink if broker.delivery else None,
            )
            for broker in topology.brokers
        ],
        [
            trigger_json(
                trigger.namespace,
                trigger.name,
                trigger.broker,
                trigger.subscriber,
                dead_letter_sink=topology.delivery_of(trigger).dead_letter_sink,
                spec=trigger.spec,
            )
            for trigger in topology.triggers
        ],
    )


def view_of(topology: Topology) -> TopologyView:
    """The manifests' topology as the viewer sees it."""
    return parse_topology(manifests_document(topology))


def render_text(view: TopologyView, topology: Topology | None = None) -> str:
    """One block per broker: each trigger's name, filter, subscriber and own dead-letter sink."""
    lines: list[str] = []
    for broker in view.brokers:
        routes = [
            route
            for route in view.triggers
            if (route.namespace, route.broker) == (broker.namespace, broker.name)
        ]
        sink = f"  (dead letters -> {broker.dead_letter_sink})" if broker.dead_letter_sink else ""
        lines.append(f"Broker {broker.namespace}/{broker.name}{sink}")
        names = max((len(route.name) for route in routes), default=0)
        filters = max((len(route.filter) for route in routes), default=0)
        for route in routes:
            own_sink = ""
            if route.dead_letter_sink and route.dead_letter_sink != broker.dead_letter_sink:
                own_sink = f"  (dead letters -> {route.dead_letter_sink})"
            lines.append(
                f"  {route.name.ljust(names)}  {route.filter.ljust(filters)}"
                f"  -> {route.subscriber}{own_sink}"
            )
        if not routes:
            lines.append("  (no triggers)")
        lines.append("")
    if topology is not None:
        for item in topology.not_ready:
            lines.append(f"not ready: {item.kind} {item.namespace}/{item.name}: {item.message}")
    return "\n".join(lines).rstrip() + "\n"


def render_mermaid(view: TopologyView) -> str:
    """A Mermaid flowchart: broker -> subscriber edges labelled with the filter."""
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}

    def node(name: str, shape: str = "service") -> str:
        key = f"{shape}:{name}"
        if key not in nodes:
            identifier = f"{'broker' if shape == 'broker' else 'svc'}_{_identifier(name)}"
            nodes[key] = identifier
            label = f"Broker {name}" if shape == "broker" else name
            text = f'(["{label}"])' if shape == "broker" else f'["{label}"]'
            lines.append(f"  {identifier}{text}")
        return nodes[key]

    for broker in view.brokers:
        node(f"{broker.namespace}/{broker.name}", "broker")
    for route in view.triggers:
        source = node(f"{route.namespace}/{route.broker}", "broker")
        target = node(route.subscriber)
        label = route.filter.replace('"', "'")
        lines.append(f'  {source} -- "{label}" --> {target}')
    sinks: set[tuple[str, str]] = set()
    for broker in view.brokers:
        if broker.dead_letter_sink:
            sinks.add((f"{broker.namespace}/{broker.name}", broker.dead_letter_sink))
    for route in view.triggers:
        if route.dead_letter_sink:
            sinks.add((f"{route.namespace}/{route.broker}", route.dead_letter_sink))
    for broker_key, sink in sorted(sinks):
        source = node(broker_key, "broker")
        lines.append(f'  {source} -. "dead letters" .-> {node(sink)}')
    return "\n".join(lines) + "\n"


def _identifier(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
