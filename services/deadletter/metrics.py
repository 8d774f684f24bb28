"""The deadletter service's own metrics, in the kit's registry (served on `GET /metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from services.deadletter import store

STORED = "shop_deadletters"
STORED_HELP = "Dead letters stored now, by the destination that failed and redelivery state"


class StoredDeadLetters(Collector):
    """`shop_deadletters{destination, state}`, counted in the database at every scrape.

    Counted there rather than in memory so that every worker process, and a restarted one,
    reports the same number.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(STORED, STORED_HELP, labels=["destination", "state"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(STORED, STORED_HELP, labels=["destination", "state"])
        with self._engine.connect() as connection:
            groups = store.counts_by_destination(connection)
        for destination, redelivered, count in groups:
            state = "redelivered" if redelivered else "pending"
            family.add_metric([destination or "", state], count)
        yield family


class DeadLetterMetrics:
    """The stored dead letters and the outcomes of redeliveries."""

    def __init__(self, registry: CollectorRegistry, engine: Engine) -> None:
        registry.register(StoredDeadLetters(engine))
        self.redeliveries = Counter(
            "shop_deadletter_redeliveries",
            "Redeliveries to the broker, by outcome (accepted, refused, unreachable)",
            ["outcome"],
            registry=registry,
        )
