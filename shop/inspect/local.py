"""`shop status` for `shop up`: the same report, from endpoints.json, the broker and the manifests.

Locally a Knative Service is ready when its process answers `/readyz`; a Trigger when the broker
routes it and its subscriber is ready; the broker when it answers `/healthz`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from shop.inspect.endpoints import LocalShop
from shop.inspect.reach import why_no_answer
from shop.inspect.status import (
    BrokerStatus,
    DeadLetterCounts,
    EventTypeStatus,
    Readiness,
    ServiceStatus,
    StatusReport,
    TriggerStatus,
    counts_from_summary,
)
from shop.manifests import ManifestError, Topology, load_topology
from shop.runner.endpoints import RESERVED_KEYS
from wire.knative.filters.description import describe_filter
from wire.topology import TopologyError, check_topology

TIMEOUT_SECONDS = 5.0
DEADLETTER_SERVICE = "deadletter"
# The RabbitMQ plane's gauge (shop.broker.rabbitmq.plane), labels `trigger` and `queue`.
QUEUE_METRIC = "shop_broker_rabbitmq_queue_messages"


@dataclass(frozen=True)
class LocalTarget:
    """The running `shop up` and the manifests it runs (for EventTypes and not-ready Triggers)."""

    shop: LocalShop
    manifests: Path | None


def local_status(target: LocalTarget) -> StatusReport:
    """The report for one `shop up`."""
    shop = target.shop
    notes: list[str] = []
    topology = _manifests(target.manifests, notes)
    services = _services(shop.endpoints)
    by_url = {service.url: service for service in services if service.url}
    broker_ready, routed = _broker(shop)
    queued = _rabbitmq_queues(shop) if routed else {}
    triggers = [_trigger(item, by_url, queued) for item in routed]
    if topology is not None:
        for problem in topology.not_ready:
            if problem.kind == "Trigger":
                readiness = Readiness(False, problem.reason, problem.message)
                triggers.append(TriggerStatus(problem.name, "?", "?", readiness))
    ingress = shop.broker_ingress
    return StatusReport(
        where=f"local (shop up, {shop.source})",
        brokers=[
            BrokerStatus(ingress.rsplit("/", 1)[-1], ingress, broker_ready, "local (shop broker)")
        ],
        services=services,
        triggers=sorted(triggers, key=lambda trigger: trigger.name),
        event_types=_event_types(topology),
        dead_letters=_dead_letters(shop),
        notes=notes,
    )


def _manifests(path: Path | None, notes: list[str]) -> Topology | None:
    if path is None or not path.is_dir():
        notes.append("no manifest folder given (--manifests): EventTypes not listed")
        return None
    try:
        return load_topology(path)
    except ManifestError as error:
        notes.append(f"cannot read {path}: {error}")
        return None


def _services(endpoints: Mapping[str, str]) -> list[ServiceStatus]:
    names = sorted(
        key
        for key, url in endpoints.items()
        # the runner's own keys (the OIDC issuer, the trace receiver...) are no services
        if "/" not in key and key not in RESERVED_KEYS and url.startswith("http")
    )
    return [
        ServiceStatus(name, endpoints[name].rstrip("/"), _probe(f"{endpoints[name]}/readyz"))
        for name in names
    ]


def _probe(url: str) -> Readiness:
    try:
        response = requests.get(url, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        return Readiness(False, "Unreachable", why_no_answer(error))
    if response.ok:
        return Readiness(True)
    try:
        detail = str(response.json().get("error") or response.text)
    except ValueError:
        detail = response.text
    return Readiness(False, f"Answered{response.status_code}", detail.strip()[:200])


def _broker(shop: LocalShop) -> tuple[Readiness, list[dict[str, Any]]]:
    readiness = _probe(f"{shop.broker_admin}/healthz")
    if readiness.ready is not True:
        return readiness, []
    try:
        response = requests.get(f"{shop.broker_admin}/_shop/topology", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        document = check_topology(response.json())
    except (requests.RequestException, ValueError, TopologyError) as error:
        return Readiness(None, "TopologyUnknown", str(error)), []
    triggers: list[dict[str, Any]] = document["triggers"]
    return readiness, triggers


def _rabbitmq_queues(shop: LocalShop) -> dict[str, int]:
    """Messages ready in each RabbitMQBroker Trigger's queue (`ns/name`), from /metrics;
    empty when the broker serves none or does not answer."""
    try:
        response = requests.get(f"{shop.broker_admin}/metrics", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException:
        return {}
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != QUEUE_METRIC:
            continue
        for sample in family.samples:
            found[sample.labels["trigger"]] = int(sample.value)
    return found


def _trigger(
    item: Mapping[str, Any],
    services: Mapping[str, ServiceStatus],
    queued: Mapping[str, int] | None = None,
) -> TriggerStatus:
    # The broker's document gives the URL it posts to (wire.topology).
    url = str(item["subscriber"].get("uri", "?")).rstrip("/")
    service = services.get(url)
    # A subscriber that is no local service (a plain `uri`) is the broker's to judge.
    if service is None or service.readiness.ready is True:
        readiness = Readiness(True)
    else:
        why = f"{service.name}: {service.readiness.why}"
        readiness = Readiness(False, "SubscriberNotReady", why)
    return TriggerStatus(
        name=str(item["name"]),
        filter=describe_filter(item),
        subscriber=service.name if service else url,
        readiness=readiness,
        queued=(queued or {}).get(f"{item['namespace']}/{item['name']}"),
    )


def _event_types(topology: Topology | None) -> list[EventTypeStatus]:
    if topology is None:
        return []
    found = []
    for item in topology.event_types:
        values = {attribute.name: attribute.value for attribute in item.attributes}
        event_type = item.type or values.get("type") or item.name
        broker = item.reference.name if item.reference else None
        exists = broker is not None and topology.broker(item.namespace, broker) is not None
        readiness = (
            Readiness(True) if exists else Readiness(False, "BrokerDoesNotExist", str(broker))
        )
        found.append(
            EventTypeStatus(event_type, item.source or values.get("source"), broker, readiness)
        )
    return sorted(found, key=lambda item: item.type)


def _dead_letters(shop: LocalShop) -> DeadLetterCounts:
    held = _held_by_broker(shop)
    url = shop.endpoints.get(DEADLETTER_SERVICE)
    if not url:
        return DeadLetterCounts(
            None, unknown_because="no deadletter service runs", held_by_broker=held
        )
    try:
        response = requests.get(f"{url.rstrip('/')}/deadletters/summary", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return counts_from_summary(response.json(), held)
    except (requests.RequestException, ValueError, KeyError) as error:
        why = why_no_answer(error) if isinstance(error, requests.RequestException) else error
        return DeadLetterCounts(None, unknown_because=f"{url}: {why}", held_by_broker=held)


def _held_by_broker(shop: LocalShop) -> int:
    count = 0
    after = 0
    while True:
        try:
            response = requests.get(
                f"{shop.broker_admin}/_shop/deadletters",
                params={"after": str(after), "limit": "1000"},
                timeout=TIMEOUT_SECONDS,
            )
            page = response.json()
            items = page["dead_letters"]
        except (requests.RequestException, ValueError, KeyError):
            return count
        if not items:
            return count
        count += len(items)
        after = int(page["next_after"])
