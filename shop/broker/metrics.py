"""The broker's Prometheus metrics: ingress answers, per-trigger deliveries, latency, backlog.

The delivery path updates plain integers (a few hundred nanoseconds) and prometheus-client
turns them into metric families when `/metrics` is scraped; its own Counter and Histogram take
a lock and walk the buckets in Python on every update, which costs more than a delivery should.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Local deliveries take a millisecond or two; retries and back-off stretch to minutes.
BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return cumulative


@dataclass
class _TriggerStats:
    accepted: int = 0
    filtered: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    attempt_seconds: _Histogram = field(default_factory=_Histogram)
    latency: _Histogram = field(default_factory=_Histogram)


class BrokerMetrics(Collector):
    """The counters of one broker process, in their own registry (nothing global)."""

    def __init__(self) -> None:
        self._ingress: dict[tuple[str, int], int] = {}
        self._triggers: dict[str, _TriggerStats] = {}
        self._backlog: Callable[[], Mapping[str, int]] = dict
        self._store_bytes: Callable[[], int] | None = None
        self._pruned = {"age": 0, "size": 0}
        self._prune_seconds = _Histogram()
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def watch_backlog(self, source: Callable[[], Mapping[str, int]]) -> None:
        """Report `source()` (trigger -> unfinished deliveries) as the backlog gauge."""
        self._backlog = source

    def watch_store(self, source: Callable[[], int]) -> None:
        """Report `source()` (the store's bytes on disk) as the store size gauge."""
        self._store_bytes = source

    def pruned(self, by_age: int, by_size: int, seconds: float) -> None:
        """One retention step: events pruned by age and by size, and how long it held the writer."""
        self._pruned["age"] += by_age
        self._pruned["size"] += by_size
        self._prune_seconds.observe(seconds)

    def ingress(self, broker: str, status: int) -> None:
        key = (broker, status)
        self._ingress[key] = self._ingress.get(key, 0) + 1

    def accepted(self, trigger: str) -> None:
        self._of(trigger).accepted += 1

    def filtered(self, trigger: str) -> None:
        self._of(trigger).filtered += 1

    def attempt(self, trigger: str, seconds: float) -> None:
        self._of(trigger).attempt_seconds.observe(seconds)

    def delivered(self, trigger: str, latency: float) -> None:
        stats = self._of(trigger)
        stats.delivered += 1
        stats.latency.observe(latency)

    def retried(self, trigger: str) -> None:
        self._of(trigger).retried += 1

    def dead_lettered(self, trigger: str, sink: str) -> None:
        counts = self._of(trigger).dead_lettered
        counts[sink] = counts.get(sink, 0) + 1

    def _of(self, trigger: str) -> _TriggerStats:
        stats = self._triggers.get(trigger)
        if stats is None:
            stats = self._triggers[trigger] = _TriggerStats()
        return stats

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        ingress = CounterMetricFamily(
            "shop_broker_ingress_requests",
            "Ingress requests by broker and the status answered.",
            labels=["broker", "status"],
        )
        for (broker, status), count in sorted(self._ingress.items()):
            ingress.add_metric([broker, str(status)], count)
        yield ingress
        triggers = sorted(self._triggers.items())
        for name, text, read in _COUNTERS:
            family = CounterMetricFamily(name, text, labels=["trigger"])
            for trigger, stats in triggers:
                family.add_metric([trigger], read(stats))
            yield family
        dead = CounterMetricFamily(
            "shop_broker_events_dead_lettered",
            "Events that failed for good: sent to the dead-letter sink or kept locally.",
            labels=["trigger", "sink"],
        )
        for trigger, stats in triggers:
            for sink, count in sorted(stats.dead_lettered.items()):
                dead.add_metric([trigger, sink], count)
        yield dead
        for name, text, pick in _HISTOGRAMS:
            histogram = HistogramMetricFamily(name, text, labels=["trigger"])
            for trigger, stats in triggers:
                chosen = pick(stats)
                histogram.add_metric([trigger], chosen.buckets(), chosen.total)
            yield histogram
        backlog = GaugeMetricFamily(
            "shop_broker_backlog",
            "Deliveries accepted and not finished (queued, in flight or waiting to retry).",
            labels=["trigger"],
        )
        for trigger, count in sorted(self._backlog().items()):
            backlog.add_metric([trigger], count)
        yield backlog
        yield from self._retention()

    def _retention(self) -> Iterator[Metric]:
        pruned = CounterMetricFamily(
            "shop_broker_events_pruned",
            "Finished events removed from the store by retention, by the rule that removed them.",
            labels=["reason"],
        )
        for reason, count in sorted(self._pruned.items()):
            pruned.add_metric([reason], count)
        yield pruned
        steps = HistogramMetricFamily(
            "shop_broker_prune_step_seconds",
            "How long one retention step held the store's writer (pruning and vacuuming).",
        )
        steps.add_metric([], self._prune_seconds.buckets(), self._prune_seconds.total)
        yield steps
        if self._store_bytes is not None:
            size = GaugeMetricFamily(
                "shop_broker_store_bytes",
                "Bytes the store occupies on disk: the database, its WAL and the WAL's index.",
            )
            size.add_metric([], self._store_bytes())
            yield size


_COUNTERS: tuple[tuple[str, str, Callable[[_TriggerStats], int]], ...] = (
    (
        "shop_broker_events_accepted",
        "Events accepted for a trigger (passed its filter and stored).",
        lambda stats: stats.accepted,
    ),
    (
        "shop_broker_events_filtered",
        "Events a trigger's filter did not pass (acknowledged, not delivered).",
        lambda stats: stats.filtered,
    ),
    (
        "shop_broker_events_delivered",
        "Events a trigger's subscriber took (2xx, its reply accepted if any).",
        lambda stats: stats.delivered,
    ),
    (
        "shop_broker_delivery_retries",
        "Failed attempts that were followed by a retry.",
        lambda stats: stats.retried,
    ),
)
_HISTOGRAMS: tuple[tuple[str, str, Callable[[_TriggerStats], _Histogram]], ...] = (
    (
        "shop_broker_delivery_attempt_seconds",
        "Duration of one HTTP attempt to a subscriber.",
        lambda stats: stats.attempt_seconds,
    ),
    (
        "shop_broker_delivery_latency_seconds",
        "From ingress arrival to the subscriber's successful answer, retries included.",
        lambda stats: stats.latency,
    ),
)
