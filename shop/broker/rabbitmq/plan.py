"""What a RabbitMQBroker is made of on RabbitMQ, worked out once at start from the manifests.

Per Broker: its RabbitMQ (the `--rabbitmq` URL, else the RabbitmqBrokerConfig's Secret, else
the local default), a durable headers exchange, and with a dead-letter sink a dead-letter
exchange and queue. Per Trigger: a durable queue bound to the exchange by its
`spec.filter.attributes` (eventing-rabbitmq `pkg/reconciler/trigger/trigger.go`), its
dispatcher's settings (`pkg/reconciler/trigger/resources/dispatcher.go`), and with its own
dead-letter sink its own dead-letter exchange and queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

from shop.broker.rabbitmq import naming
from shop.broker.routes import BrokerRoute, Routes, TriggerRoute
from shop.manifests import Broker, Topology, Trigger
from shop.manifests.rabbitmq import QueueType, RabbitmqBrokerConfig
from wire.knative import DeliverySpec

log = logging.getLogger(__name__)

BROKER_CLASS = "RabbitMQBroker"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"
MAX_PARALLELISM = 1000
# pkg/rabbit/binding.go: every binding matches all its headers; RabbitMQ ignores `x-` keys
# when matching, so the trigger's name rides along for whoever lists the bindings.
MATCH_ARGUMENT = ("x-match", "all")
TRIGGER_ARGUMENT = "x-knative-trigger"
DLQ_ARGUMENT = "x-knative-dlq"
# cmd/dispatcher: RETRY is 5 when a delivery spec leaves it out; BACKOFF_DELAY defaults to
# 50ms, and any policy but linear is exponential.
DEFAULT_RETRY_WITH_SPEC = 5
DEFAULT_BACKOFF_DELAY = 0.05


class PlanError(ValueError):
    """A RabbitMQBroker or one of its Triggers that eventing-rabbitmq's webhook would refuse."""


@dataclass(frozen=True)
class TriggerPlan:
    """One Trigger's queue, binding and dispatcher settings."""

    route: TriggerRoute
    queue: str
    binding: Mapping[str, str]
    retry: int
    delivery: DeliverySpec
    parallelism: int
    #: Where a failed event is published: the Trigger's own DLX, else the Broker's, else None
    #: (the event is dropped, with a warning).
    dead_letter_exchange: str | None
    #: With the Trigger's own dead-letter sink: its DLX and DLQ, and the sink's URL.
    own_dead_letter: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class BrokerPlan:
    """One RabbitMQBroker: where its RabbitMQ is, its exchange, its dead letters, its Triggers."""

    route: BrokerRoute
    uid: str
    url: str
    queue_type: QueueType
    exchange: str
    triggers: tuple[TriggerPlan, ...]
    #: With the Broker's dead-letter sink: its DLX, DLQ and the sink's URL (None when no
    #: Trigger falls back to it, so nothing would publish there).
    dead_letter: tuple[str, str, str | None] | None = None

    @property
    def key(self) -> str:
        return self.route.key


def plan_rabbitmq(
    topology: Topology, routes: Routes, override_url: str | None
) -> dict[str, BrokerPlan]:
    """The plan of every Broker of class RabbitMQBroker, by `namespace/name`; raise PlanError."""
    plans: dict[str, BrokerPlan] = {}
    for broker in topology.brokers:
        if broker.broker_class != BROKER_CLASS:
            continue
        route = routes.broker(broker.namespace, broker.name)
        assert route is not None  # build_routes makes a route of every Broker
        plans[route.key] = _broker_plan(topology, broker, route, override_url)
    return plans


def _broker_plan(
    topology: Topology, broker: Broker, route: BrokerRoute, override_url: str | None
) -> BrokerPlan:
    config = _config_of(topology, broker)
    uid = naming.broker_uid(broker.namespace, broker.name)
    url = override_url or _url_of(topology, broker, config)
    dlx = None
    if broker.delivery is not None and broker.delivery.dead_letter_sink is not None:
        dlx = naming.broker_exchange(broker.namespace, broker.name, uid, dlx=True)
    by_name = {trigger.name: trigger for trigger in topology.triggers_of(broker)}
    triggers = tuple(_trigger_plan(by_name[r.name], broker, r, uid, dlx) for r in route.triggers)
    dead_letter = None
    if dlx is not None:
        # A Trigger without a sink of its own has the Broker's as its effective one.
        falling_back = [t.route for t in triggers if t.own_dead_letter is None]
        sink = falling_back[0].dead_letter_url if falling_back else None
        dlq = naming.broker_dead_letter_queue(broker.namespace, broker.name, uid)
        dead_letter = (dlx, dlq, sink)
    return BrokerPlan(
        route=route,
        uid=uid,
        url=url,
        queue_type=config.queue_type if config is not None else "quorum",
        exchange=naming.broker_exchange(broker.namespace, broker.name, uid),
        triggers=triggers,
        dead_letter=dead_letter,
    )


def _config_of(topology: Topology, broker: Broker) -> RabbitmqBrokerConfig | None:
    """The RabbitmqBrokerConfig `spec.config` names (the Broker webhook's rules)."""
    config = broker.config
    if config is None:
        return None
    missing = [key for key in ("apiVersion", "kind", "name", "namespace") if not config.get(key)]
    if missing:
        raise PlanError(f"{broker.label}: spec.config: missing {', '.join(missing)}")
    if (config.get("kind"), config.get("apiVersion")) != (
        "RabbitmqBrokerConfig",
        "eventing.knative.dev/v1alpha1",
    ):
        raise PlanError(
            f"{broker.label}: spec.config must be a RabbitmqBrokerConfig "
            f"(eventing.knative.dev/v1alpha1), not {config.get('kind')} "
            f"({config.get('apiVersion')})"
        )
    for found in topology.rabbitmq_broker_configs:
        if (found.namespace, found.name) == (config.get("namespace"), config.get("name")):
            return found
    raise PlanError(
        f"{broker.label}: spec.config: RabbitmqBrokerConfig "
        f"{config.get('namespace')}/{config.get('name')} does not exist"
    )


def _url_of(topology: Topology, broker: Broker, config: RabbitmqBrokerConfig | None) -> str:
    """The AMQP URL of the config's connection Secret (its `uri` is the management URL: the
    host is taken from it), else the local default."""
    if config is None or config.connection_secret is None:
        if config is not None:
            log.info(
                "%s: RabbitmqCluster %s has no local meaning; using %s (--rabbitmq)",
                broker.label,
                config.cluster_name,
                _without_password(DEFAULT_URL),
            )
        return DEFAULT_URL
    secret = next(
        (
            s
            for s in topology.secrets
            if (s.namespace, s.name) == (config.namespace, config.connection_secret)
        ),
        None,
    )
    where = (
        f"RabbitmqBrokerConfig {config.namespace}/{config.name}: Secret {config.connection_secret}"
    )
    if secret is None:
        raise PlanError(f"{where} does not exist")
    missing = [key for key in ("uri", "username", "password") if key not in secret.data]
    if missing:
        raise PlanError(f"{where} has no {', '.join(missing)}")
    host = urlsplit(secret.data["uri"].decode()).hostname
    if not host:
        raise PlanError(f"{where}: uri has no host")
    port = secret.data.get("port", b"5672").decode()
    user = quote(secret.data["username"].decode(), safe="")
    password = quote(secret.data["password"].decode(), safe="")
    vhost = quote(config.vhost or "/", safe="")
    return f"amqp://{user}:{password}@{host}:{port}/{vhost}"


def _trigger_plan(
    trigger: Trigger, broker: Broker, route: TriggerRoute, broker_uid: str, broker_dlx: str | None
) -> TriggerPlan:
    if trigger.filters:
        # The Trigger webhook does not look at `filters` and the reconciler binds by
        # `spec.filter` alone: in eventing-rabbitmq the new dialects are ignored.
        log.warning(
            "Trigger %s: spec.filters is ignored by a RabbitMQBroker (only spec.filter.attributes "
            "becomes its binding)",
            route.key,
        )
    attributes = (trigger.filter or {}).get("attributes") or {}
    assert isinstance(attributes, Mapping)
    binding = {str(k): str(v) for k, v in attributes.items()}
    binding.update((MATCH_ARGUMENT, (TRIGGER_ARGUMENT, trigger.name)))
    spec = trigger.delivery or broker.delivery
    own = None
    dlx = broker_dlx
    if trigger.delivery is not None and trigger.delivery.dead_letter_sink is not None:
        uid = naming.trigger_uid(trigger.namespace, trigger.name)
        dlx = naming.trigger_dead_letter_exchange(trigger.namespace, trigger.name, uid)
        dlq = naming.trigger_dead_letter_queue(trigger.namespace, trigger.name, uid)
        assert route.dead_letter_url is not None
        own = (dlx, dlq, route.dead_letter_url)
    return TriggerPlan(
        route=route,
        queue=naming.trigger_queue(trigger.namespace, trigger.name, broker_uid),
        binding=binding,
        retry=_retry_of(spec),
        delivery=_backoff_of(spec),
        parallelism=parallelism_of(trigger.annotations, route.key),
        dead_letter_exchange=dlx,
        own_dead_letter=own,
    )


def _retry_of(spec: DeliverySpec | None) -> int:
    if spec is None:
        return 0
    return DEFAULT_RETRY_WITH_SPEC if spec.retry is None else spec.retry


def _backoff_of(spec: DeliverySpec | None) -> DeliverySpec:
    """The spec with the dispatcher's defaults: exponential unless linear, 50 ms."""
    spec = spec or DeliverySpec()
    return replace(
        spec,
        backoff_policy="linear" if spec.backoff_policy == "linear" else "exponential",
        backoff_delay=DEFAULT_BACKOFF_DELAY if spec.backoff_delay is None else spec.backoff_delay,
    )


def parallelism_of(annotations: Mapping[str, str], trigger: str) -> int:
    """The Trigger's workers (the webhook's rules: an integer, 1 to 1000; default 1)."""
    text = annotations.get(PARALLELISM_ANNOTATION)
    if text is None:
        return 1
    where = f"Trigger {trigger}: metadata.annotations.{PARALLELISM_ANNOTATION}"
    try:
        value = int(text)
    except ValueError:
        raise PlanError(f"{where}: Failed to parse valid int from parallelismAnnotation") from None
    if not 1 <= value <= MAX_PARALLELISM:
        raise PlanError(f"{where}: expected 1 <= {value} <= {MAX_PARALLELISM}")
    return value


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
