"""The manifests turned into what the broker routes by: brokers, triggers, resolved URLs, filters.

Everything here is computed once at start-up: each trigger's filter is compiled, its delivery
resolved (Knative's replace-wholesale rule lives in `wire.knative`), its subscriber and
dead-letter sink turned into URLs of local processes. A broker of class Kafka also gets its
topic's partition count, and its triggers their delivery order (`shop.manifests.kafka`); other
classes ignore the Kafka annotation, as Knative's other brokers do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shop.manifests import Broker, Topology, Trigger
from shop.manifests.kafka import topic_partitions, trigger_delivery_order
from wire.knative import DeliverySpec, Destination, KReference
from wire.knative.kafka import KAFKA_BROKER_CLASSES
from wire.oidc.subjects import broker_audience
from wire.spec import AttributeValue

log = logging.getLogger(__name__)

Predicate = Callable[[Mapping[str, AttributeValue]], bool]
KSVC = ("serving.knative.dev/v1", "Service")
BROKER = ("eventing.knative.dev/v1", "Broker")


class RouteError(ValueError):
    """A trigger whose subscriber or dead-letter sink cannot be reached locally."""


@dataclass(frozen=True)
class TriggerRoute:
    """One trigger as the dispatcher uses it."""

    namespace: str
    name: str
    broker: str
    subscriber_url: str
    dead_letter_url: str | None
    delivery: DeliverySpec
    matches: Predicate
    concurrency: int
    filter_spec: Mapping[str, object]
    #: The OIDC audiences the subscriber and the dead-letter sink accept (None: no token).
    subscriber_audience: str | None = None
    dead_letter_audience: str | None = None
    #: A Kafka broker's `delivery.order: ordered`: one event at a time per partition.
    ordered: bool = False

    @property
    def key(self) -> str:
        """`namespace/name`, how the store, logs and metrics name the trigger."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class BrokerRoute:
    """One broker: its ingress URL and the triggers on it."""

    namespace: str
    name: str
    url: str
    triggers: tuple[TriggerRoute, ...]
    #: The partition count of a Kafka broker's topic; None for other classes.
    partitions: int | None = None

    @property
    def key(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Routes:
    """Every broker by (namespace, name) and every trigger by key."""

    brokers: Mapping[tuple[str, str], BrokerRoute]
    triggers: Mapping[str, TriggerRoute]

    def broker(self, namespace: str, name: str) -> BrokerRoute | None:
        """The broker at `/<namespace>/<name>`, if the manifests define it."""
        return self.brokers.get((namespace, name))


def load_endpoints(path: Path) -> dict[str, str]:
    """The runner's endpoints file (`{"<service>": "http://127.0.0.1:<port>"}`); {} if absent."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RouteError(f"{path}: cannot read the endpoints file: {error}") from None
    if not isinstance(document, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in document.items()
    ):
        raise RouteError(f"{path}: expected a JSON object of service name -> URL")
    return dict(document)


def build_routes(
    topology: Topology,
    endpoints: Mapping[str, str],
    base_url: str,
    compile_filter: Callable[[Mapping[str, object]], Predicate],
    concurrency: int,
) -> Routes:
    """Resolve every broker and trigger; a trigger Knative would report not ready is skipped.

    A trigger whose broker does not exist, or whose ref names nothing the manifests define, is
    logged and left out, as Knative delivers nothing to a trigger that is not ready. A ref to a
    Knative Service that has no entry in the endpoints file is an error: the runner should have
    written it, and silently delivering nowhere would hide that.
    """
    resolver = _Resolver(topology, endpoints, base_url)
    not_ready = {
        (item.namespace, item.name) for item in topology.not_ready if item.kind == "Trigger"
    }
    for item in topology.not_ready:
        if item.kind == "Trigger":
            log.warning(
                "trigger %s/%s is not ready and gets no events: %s",
                item.namespace,
                item.name,
                item.message,
            )
    brokers: dict[tuple[str, str], BrokerRoute] = {}
    triggers: dict[str, TriggerRoute] = {}
    for broker in topology.brokers:
        kafka = broker.broker_class in KAFKA_BROKER_CLASSES
        routes = tuple(
            _trigger_route(topology, resolver, trigger, compile_filter, concurrency, kafka=kafka)
            for trigger in topology.triggers_of(broker)
            if (trigger.namespace, trigger.name) not in not_ready
        )
        brokers[(broker.namespace, broker.name)] = BrokerRoute(
            broker.namespace,
            broker.name,
            resolver.broker_url(broker),
            routes,
            topic_partitions(broker, topology.config_maps) if kafka else None,
        )
        triggers.update((route.key, route) for route in routes)
    return Routes(brokers, triggers)


def _trigger_route(
    topology: Topology,
    resolver: _Resolver,
    trigger: Trigger,
    compile_filter: Callable[[Mapping[str, object]], Predicate],
    concurrency: int,
    *,
    kafka: bool,
) -> TriggerRoute:
    delivery = topology.delivery_of(trigger)
    dead_letter = delivery.dead_letter_sink
    service = topology.subscriber_service(trigger)
    # A ksvc's containerConcurrency bounds how many requests it takes at once (0: unlimited).
    limit = service.container_concurrency if service is not None else None
    return TriggerRoute(
        namespace=trigger.namespace,
        name=trigger.name,
        broker=trigger.broker,
        subscriber_url=resolver.url(trigger.subscriber, trigger, "spec.subscriber"),
        dead_letter_url=(
            None
            if dead_letter is None
            else resolver.url(dead_letter, trigger, "spec.delivery.deadLetterSink")
        ),
        delivery=delivery,
        matches=compile_filter(trigger.spec),
        concurrency=min(concurrency, limit) if limit else concurrency,
        filter_spec={
            key: trigger.spec[key] for key in ("filter", "filters") if key in trigger.spec
        },
        subscriber_audience=resolver.audience(trigger.subscriber, trigger.namespace),
        dead_letter_audience=(
            None if dead_letter is None else resolver.audience(dead_letter, trigger.namespace)
        ),
        ordered=kafka and trigger_delivery_order(trigger) == "ordered",
    )


class _Resolver:
    """Destination -> URL: a ksvc ref through the endpoints file, a Broker ref to this ingress."""

    def __init__(self, topology: Topology, endpoints: Mapping[str, str], base_url: str) -> None:
        self._topology = topology
        self._endpoints = endpoints
        self._base_url = base_url

    def broker_url(self, broker: Broker) -> str:
        return f"{self._base_url}/{broker.namespace}/{broker.name}"

    def audience(self, destination: Destination, namespace: str) -> str | None:
        """The OIDC audience a delivery to `destination` is for (Knative's resolver): the one
        the Destination names, else a Broker's own; a Knative Service publishes none."""
        ref = destination.ref
        if destination.audience or ref is None or (ref.api_version, ref.kind) != BROKER:
            return destination.audience
        return broker_audience(ref.namespace or namespace, ref.name)

    def url(self, destination: Destination, trigger: Trigger, field: str) -> str:
        def address_of(ref: KReference, namespace: str) -> str:
            kind = (ref.api_version, ref.kind)
            if kind == BROKER:
                return f"{self._base_url}/{namespace}/{ref.name}"
            if kind == KSVC:
                found = self._endpoints.get(f"{namespace}/{ref.name}") or self._endpoints.get(
                    ref.name
                )
                if found is None:
                    raise RouteError(
                        f"Trigger {trigger.namespace}/{trigger.name}: {field}.ref: Service "
                        f"{ref.name!r} has no local endpoint (is it in the endpoints file?)"
                    )
                return found
            raise RouteError(
                f"Trigger {trigger.namespace}/{trigger.name}: {field}.ref: cannot deliver to "
                f"{ref.kind} ({ref.api_version}) locally"
            )

        url = destination.resolve(trigger.namespace, address_of)
        assert url is not None  # admission demands a ref or a URI; address_of never gives None
        return url
