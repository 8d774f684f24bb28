"""What a Broker of class Kafka takes from the manifests: its topic's partition count and each
of its Triggers' delivery order (the rules: `wire.knative.kafka`).

Knative reports a bad value of either at run time (the Broker or Trigger is not ready); locally
it stops the start, naming the file and line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from shop.manifests.core import ConfigMap
from shop.manifests.eventing import Broker, Trigger
from shop.manifests.fields import field_path
from wire.knative.kafka import (
    DEFAULT_TOPIC_PARTITIONS,
    DELIVERY_ORDER_ANNOTATION,
    TOPIC_PARTITIONS_KEY,
    DeliveryOrder,
    delivery_order,
)

log = logging.getLogger(__name__)

# The ConfigMap a Kafka install's config-br-defaults gives a Broker without spec.config.
DEFAULT_CONFIG = ("knative-eventing", "kafka-broker-config")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT32 = range(-(2**31), 2**31)


def trigger_delivery_order(trigger: Trigger) -> DeliveryOrder:
    """The Trigger's `kafka.eventing.knative.dev/delivery.order`, unordered when it has none."""
    try:
        return delivery_order(trigger.annotations.get(DELIVERY_ORDER_ANNOTATION))
    except ValueError as error:
        path = field_path("metadata.annotations", DELIVERY_ORDER_ANNOTATION)
        raise trigger.error(path, str(error)) from None


def topic_partitions(broker: Broker, config_maps: Iterable[ConfigMap]) -> int:
    """The partition count of the Broker's topic: `default.topic.partitions` of the ConfigMap its
    spec.config names, or of Knative's own when that ConfigMap is not in the manifests."""
    namespace, name = _config_map_of(broker)
    found = next(
        (item for item in config_maps if (item.namespace, item.name) == (namespace, name)), None
    )
    if found is None:
        log.info(
            "Broker %s/%s: its ConfigMap %s/%s is not in the manifests; its topic has %d "
            "partitions, as in the kafka-broker-config Knative ships",
            broker.namespace,
            broker.name,
            namespace,
            name,
            DEFAULT_TOPIC_PARTITIONS,
        )
        return DEFAULT_TOPIC_PARTITIONS
    return _partitions(found, broker)


def _config_map_of(broker: Broker) -> tuple[str, str]:
    """(namespace, name) of the ConfigMap the Broker's spec.config names; checked as the Kafka
    broker's webhook checks it (KB `control-plane/pkg/apis/eventing/v1/broker_validation.go`)."""
    config = broker.config
    if not config:
        return DEFAULT_CONFIG
    kind = config.get("kind")
    if not isinstance(kind, str) or kind.lower() != "configmap":
        raise broker.error("spec.config.kind", f"invalid value: {kind}: expected ConfigMap")
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise broker.error("spec.config.name", "required")
    namespace = config.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        return broker.namespace, name
    if broker.broker_class == "KafkaNamespaced" and namespace != broker.namespace:
        raise broker.error(
            "spec.config.namespace",
            f"invalid value: {namespace}: expected ConfigMap in same namespace with broker"
            " resource",
        )
    return namespace, name


def _partitions(config_map: ConfigMap, broker: Broker) -> int:
    """`default.topic.partitions`, read as KB `control-plane/pkg/kafka/topic.go` reads it (an
    int32); a missing or non-positive count leaves Knative's Broker not ready."""
    path = field_path("data", TOPIC_PARTITIONS_KEY)
    text = config_map.data.get(TOPIC_PARTITIONS_KEY)
    why = f"(Broker {broker.namespace}/{broker.name} would not be ready)"
    if text is None:
        raise config_map.error(path, f"required: the topic's partition count {why}")
    if not _INTEGER.fullmatch(text) or int(text) not in _INT32:
        raise config_map.error(path, f"{text!r} is not a 32-bit integer {why}")
    count = int(text)
    if count <= 0:
        raise config_map.error(path, f"invalid configuration - numPartitions: {count} {why}")
    return count
