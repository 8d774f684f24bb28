"""Ordered delivery for a Broker of class Kafka (`kafka.eventing.knative.dev/delivery.order:
ordered` on the Trigger): one event in flight per partition of the broker's topic.

The Kafka broker's ordered consumer keeps one executor per partition that dispatches the next
record only once the one before is done: delivered, or failed after every retry and handed to
the dead-letter sink (KB `data-plane/dispatcher/src/main/java/dev/knative/eventing/kafka/broker/
dispatcher/impl/consumer/OrderedConsumerVerticle.java`). A retrying event so holds its
partition back while the other partitions flow. Which partition an event is in: `Partitions`.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Generic, TypeVar

from shop.broker.envelope import Envelope
from wire.knative.kafka import StickyPartition, key_partition
from wire.spec import PARTITION_KEY_EXTENSION, attribute_text

T = TypeVar("T")
# A Kafka record carries each attribute as a `ce_<name>` header.
_HEADER_PREFIX_BYTES = 3


class Partitions:
    """The partitions of one Kafka broker's topic, and the one each event went to."""

    def __init__(self, count: int, sticky: StickyPartition | None = None) -> None:
        self.count = count
        self._sticky = sticky or StickyPartition(count)

    def of(self, envelope: Envelope) -> int:
        """The event's partition: by its `partitionkey`, else the sticky one. Chosen once, when
        an ordered Trigger first takes the event on (in accepted order), and kept on it."""
        partition = envelope.partition
        if partition is None:
            key = envelope.event.attributes.get(PARTITION_KEY_EXTENSION)
            if key is None:
                partition = self._sticky.take(_record_size(envelope))
            else:
                partition = key_partition(attribute_text(key), self.count)
            envelope.partition = partition
        return partition


def _record_size(envelope: Envelope) -> int:
    """About the size of the event as a Kafka record: its data and its attributes as headers."""
    event = envelope.event
    size = len(event.data or b"")
    for name, value in event.attributes.items():
        size += _HEADER_PREFIX_BYTES + len(name) + len(attribute_text(value))
    return size


class PartitionOrder(Generic[T]):
    """One ordered Trigger's deliveries by partition: the head of each partition is out (queued,
    in flight or waiting for a retry); the others wait behind it in accepted order."""

    def __init__(self, partitions: Partitions) -> None:
        self._partitions = partitions
        #: Partitions with a head out -> what waits behind it, each with when it is due.
        self._behind: dict[int, deque[tuple[T, float]]] = {}

    def admit(self, item: T, envelope: Envelope, delay: float) -> bool:
        """Take `item` (a delivery of `envelope`, due in `delay` seconds) on; True when its
        partition has nothing out, so it goes now; else it waits for `release`."""
        partition = self._partitions.of(envelope)
        waiting = self._behind.get(partition)
        if waiting is None:
            self._behind[partition] = deque()
            return True
        waiting.append((item, time.monotonic() + delay))
        return False

    def release(self, envelope: Envelope) -> tuple[T, float] | None:
        """`envelope`'s delivery, the head of its partition, is finished: the next one to send
        and the seconds until it is due, or None when none waits."""
        partition = self._partitions.of(envelope)
        waiting = self._behind[partition]
        if not waiting:
            del self._behind[partition]
            return None
        item, due = waiting.popleft()
        return item, max(due - time.monotonic(), 0.0)

    def waiting(self) -> int:
        """Deliveries held back behind their partition's head."""
        return sum(len(waiting) for waiting in self._behind.values())
