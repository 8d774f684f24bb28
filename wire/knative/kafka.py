"""The Kafka broker's rules where it differs from the MT broker, as pure functions.

From knative-extensions/eventing-kafka-broker (`KB`) and the Kafka Java client (3.9) it runs:

- its broker classes: KB `control-plane/pkg/kafka/broker_class.go`;
- a Trigger's `kafka.eventing.knative.dev/delivery.order` annotation, compared without regard
  to case, and the reconciler's error for any other value (the Trigger is then not ready):
  KB `control-plane/pkg/reconciler/trigger/v2/triggerv2.go`, `deliveryOrderingFromString`;
- the topic's partition count, `default.topic.partitions` of the Broker's ConfigMap
  (KB `control-plane/pkg/kafka/topic.go`), "10" in the ConfigMap Knative ships
  (KB `control-plane/config/eventing-kafka-broker/100-broker/100-kafka-broker-configmap.yaml`);
- the partition of an event: the receiver makes its `partitionkey` the record key
  (`PartitionKeyExtensionInterceptor` and a `StringSerializer`, KB
  `data-plane/receiver/src/main/java/dev/knative/eventing/kafka/broker/receiver/main/Main.java`),
  and the producer's built-in partitioner (no `partitioner.class` is configured) sends a keyed
  record to murmur2 of the key's UTF-8 bytes, made positive, modulo the partition count
  (`BuiltInPartitioner.partitionForKey`, `Utils.murmur2`, `Utils.toPositive`). A record without a
  key goes to the producer's sticky partition (KIP-794, `BuiltInPartitioner`).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Literal

KAFKA_BROKER_CLASSES = frozenset({"Kafka", "KafkaNamespaced"})
DELIVERY_ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
DeliveryOrder = Literal["ordered", "unordered"]
TOPIC_PARTITIONS_KEY = "default.topic.partitions"
DEFAULT_TOPIC_PARTITIONS = 10
# batch.size of KB's config-kafka-broker-producer.properties: how much goes to the sticky
# partition before the producer moves on.
STICKY_BATCH_BYTES = 16384

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C
_WORDS = struct.Struct("<I")


def delivery_order(value: str | None) -> DeliveryOrder:
    """A Trigger's delivery order from its annotation's value (None: not annotated)."""
    if value is None:
        return "unordered"
    lowered = value.lower()
    if lowered == "ordered":
        return "ordered"
    if lowered == "unordered":
        return "unordered"
    raise ValueError(
        f"invalid annotation {DELIVERY_ORDER_ANNOTATION} value: {value}."
        ' Allowed values [ "ordered" | "unordered" ]'
    )


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`: the 32-bit MurmurHash2 of `data`, as Java's signed int."""
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for (word,) in _WORDS.iter_unpack(data[:whole]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[whole + 2] << 16
        if rest >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's `Utils.toPositive`: the sign bit cleared (not the absolute value)."""
    return number & 0x7FFFFFFF


def key_partition(key: str, partitions: int) -> int:
    """The partition of a record whose key is `key` (the event's `partitionkey`)."""
    return to_positive(murmur2(key.encode("utf-8"))) % partitions


class StickyPartition:
    """Where the producer sends records without a key: one partition until `batch_bytes` of
    them went to it, then one drawn at random.

    Kafka draws uniformly unless its partitions' queues of unsent batches differ in length,
    then it favours the shorter ones; a local broker has no such queues, so the draw is uniform.
    Kafka may also stay up to twice `batch_bytes` while the partition's last batch is not full;
    with `linger.ms=0`, as KB configures it, batches leave at once.
    """

    def __init__(
        self,
        partitions: int,
        choose: Callable[[int], int] = random.randrange,
        batch_bytes: int = STICKY_BATCH_BYTES,
    ) -> None:
        self._partitions = partitions
        self._choose = choose
        self._batch_bytes = batch_bytes
        self._current: int | None = None
        self._produced = 0

    def take(self, size: int) -> int:
        """The partition of the next keyless record, `size` bytes long."""
        if self._current is None:
            self._current = self._choose(self._partitions)
        partition = self._current
        self._produced += size
        if self._produced >= self._batch_bytes:
            self._current = self._choose(self._partitions)
            self._produced = 0
        return partition
