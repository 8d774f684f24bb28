"""Prometheus metrics of one service instance (its own registry, no global state)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class KitMetrics:
    """Events received by type and outcome, handling latency, outbox backlog, relay results and
    senders refused."""

    def __init__(self, backlog: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "shop_events_received",
            "CloudEvents received on POST /, by type and outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.handling_seconds = Histogram(
            "shop_event_handling_seconds",
            "Time from a validated event to its answer, by type",
            ["type"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.relayed = Counter(
            "shop_outbox_relayed", "Outbox events the broker accepted", registry=self.registry
        )
        self.relay_failures = Counter(
            "shop_outbox_relay_failures",
            "Failed attempts to post an outbox event to the broker",
            registry=self.registry,
        )
        self.relay_parked = Counter(
            "shop_outbox_parked",
            "Outbox events the broker refused for good (a 4xx it does not retry), kept unsent",
            registry=self.registry,
        )
        self.backlog = Gauge(
            "shop_outbox_backlog",
            "Outbox events not yet accepted by the broker",
            registry=self.registry,
        )
        self.backlog.set_function(backlog)
        self.sender_refusals = Counter(
            "shop_sender_refusals",
            "Requests to POST / refused for their sender, by reason: missing or invalid token "
            "(401), subject not allowed (403), issuer unreachable (503)",
            ["reason"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, event_type: str, outcome: str, seconds: float) -> None:
        """Count one received event and its handling time."""
        key = (event_type, outcome)
        children = self._children.get(key)
        if children is None:
            children = (
                self.received.labels(event_type, outcome),
                self.handling_seconds.labels(event_type),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
