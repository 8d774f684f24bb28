"""A Broker of class Kafka: ordered Triggers, the delivery-order annotation, new Triggers.

An ordered Trigger gets one event at a time per partition, the partition chosen from the
`partitionkey` as Kafka's producer chooses it: a retrying event holds its partition back while
the other partitions flow. Measured where it shows: when the subscriber saw each request.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import REPO_ROOT, BrokerProcess, broker_manifest, trigger_manifest
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Answer, Received, Script, always
from wire.knative.kafka import DEFAULT_TOPIC_PARTITIONS, key_partition

ORDER = "kafka.eventing.knative.dev/delivery.order"
# Two order ids on different partitions of the 10 a Kafka broker's topic has by default.
KEY_A, KEY_B = "order-a", "order-b"
# Waits of 0.2, 0.4 and 0.8 s: B's events have long been delivered when A's first succeeds.
RETRIES = {"retry": 5, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}
EARLY = 0.02  # timers may fire this much early on a loaded machine


def kafka_broker(broker_class: str = "Kafka", **spec: Any) -> dict[str, Any]:
    document = broker_manifest(**spec)
    document["metadata"]["annotations"] = {"eventing.knative.dev/broker.class": broker_class}
    return document


def with_order(trigger: dict[str, Any], value: str | None) -> dict[str, Any]:
    if value is not None:
        trigger["metadata"]["annotations"] = {ORDER: value}
    return trigger


def failing(event_id: str, times: int | None, dead_letter_delay: float = 0.0) -> Script:
    """500 to the first `times` requests for `event_id` (None: to every one), 200 to others;
    the dead-letter sink (path /dls) answers 200 after `dead_letter_delay` seconds."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def answer(n: int, received: Received) -> Answer:
        if received.path == "/dls":
            return Answer(200, delay=dead_letter_delay)
        if received.headers.get("ce-id") == event_id:
            with lock:
                seen[event_id] += 1
                count = seen[event_id]
            if times is None or count <= times:
                return Answer(500)
        return Answer(200)

    return answer


def ids(received: Iterable[Received]) -> list[str]:
    return [r.headers.get("ce-id", "") for r in received]


def of_key(received: Iterable[Received], key: str) -> list[Received]:
    return [r for r in received if r.headers.get("ce-partitionkey") == key]


def send_alternately(broker: BrokerProcess, count: int) -> None:
    """a-1, b-1, a-2, b-2, ...: events of keys A and B, each accepted before the next is sent."""
    for n in range(1, count + 1):
        send(broker, "test.ordered", id=f"a-{n}", partitionkey=KEY_A)
        send(broker, "test.ordered", id=f"b-{n}", partitionkey=KEY_B)


def test_the_keys_lie_on_different_partitions() -> None:
    assert key_partition(KEY_A, DEFAULT_TOPIC_PARTITIONS) != key_partition(
        KEY_B, DEFAULT_TOPIC_PARTITIONS
    )


def test_a_retrying_event_holds_its_partition_back_while_another_partition_flows(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(failing("a-1", times=3))
    trigger = trigger_manifest("t", {"uri": sub.url}, delivery=RETRIES)
    broker = start_broker([kafka_broker(), with_order(trigger, "ordered")])
    send_alternately(broker, 3)
    received = sub.wait_for(9)
    a, b = of_key(received, KEY_A), of_key(received, KEY_B)
    assert ids(a) == ["a-1", "a-1", "a-1", "a-1", "a-2", "a-3"]
    assert ids(b) == ["b-1", "b-2", "b-3"]
    a_1_delivered = a[3]
    assert all(r.at < a_1_delivered.at for r in b), "B's partition waited for A's retries"
    wait_for_state(broker, "a-3", "shop/t", "delivered")


def test_the_next_event_of_a_partition_waits_until_the_dead_letter_sink_took_the_failed_one(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(failing("a-1", times=None, dead_letter_delay=0.3))
    delivery = {
        "retry": 1,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT0.3S",
        "deadLetterSink": {"uri": f"{sub.url}/dls"},
    }
    trigger = trigger_manifest("t", {"uri": sub.url}, delivery=delivery)
    broker = start_broker([kafka_broker(), with_order(trigger, "ordered")])
    send_alternately(broker, 2)
    (dead_letter,) = sub.wait_for(1, path="/dls")
    received = sub.wait_for(5, path="/")
    a, b = of_key(received, KEY_A), of_key(received, KEY_B)
    assert ids(a) == ["a-1", "a-1", "a-2"]
    assert ids(b) == ["b-1", "b-2"]
    assert dead_letter.headers["ce-id"] == "a-1"
    assert a[2].at >= dead_letter.at + 0.3 - EARLY, "a-2 went out before the sink answered"
    assert all(r.at < dead_letter.at for r in b)
    wait_for_state(broker, "a-1", "shop/t", "dead_lettered")


@pytest.mark.parametrize(
    ("broker_class", "annotation"),
    [("Kafka", None), ("Kafka", "unordered"), ("MTChannelBasedBroker", "ordered")],
    ids=["kafka-default", "kafka-unordered", "mt-ignores-the-annotation"],
)
def test_unordered_delivery_does_not_wait_for_a_retrying_event_of_the_same_key(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: str,
    annotation: str | None,
) -> None:
    sub = subscriber_factory(failing("a-1", times=3))
    trigger = trigger_manifest("t", {"uri": sub.url}, delivery=RETRIES)
    broker = start_broker([kafka_broker(broker_class), with_order(trigger, annotation)])
    send_alternately(broker, 2)
    a = of_key(sub.wait_for(7), KEY_A)
    assert ids(a) == ["a-1", "a-2", "a-1", "a-1", "a-1"]
    wait_for_state(broker, "a-1", "shop/t", "delivered")


def test_an_invalid_delivery_order_refuses_to_start_with_knatives_message(tmp_path: Path) -> None:
    trigger = with_order(trigger_manifest("t", {"uri": "http://127.0.0.1:9/"}), "sorted")
    broker = BrokerProcess(tmp_path, [kafka_broker(), trigger], {})
    finished = subprocess.run(
        broker.args, capture_output=True, text=True, timeout=30, check=False, cwd=REPO_ROOT
    )
    assert finished.returncode == 2
    messages = [json.loads(line)["message"] for line in finished.stderr.splitlines()]
    assert (
        f"Trigger shop/t: metadata.annotations[{ORDER}]: invalid annotation {ORDER} value:"
        ' sorted. Allowed values [ "ordered" | "unordered" ]'
    ) in messages[-1]


def test_a_trigger_added_between_runs_gets_only_the_events_accepted_after_it(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    """A new Trigger's consumer group starts at the latest offset; locally, the store holds a
    delivery per Trigger an event matched when it was accepted, and no more."""
    sub = subscriber_factory(failing("before-2", times=None))
    first = trigger_manifest("first", {"uri": f"{sub.url}/first"})
    broker = start_broker([kafka_broker(), with_order(first, "ordered")])
    send(broker, "test.new-trigger", id="before-1", partitionkey=KEY_A)
    send(broker, "test.new-trigger", id="before-2", partitionkey=KEY_B)
    wait_for_state(broker, "before-1", "shop/first", "delivered")
    wait_for(lambda: "before-2" in sub.ids("/first"), what="before-2 tried")
    broker.stop()

    sub.script = always(200)
    second = trigger_manifest("second", {"uri": f"{sub.url}/second"})
    broker.write_manifests([kafka_broker(), with_order(first, "ordered"), second])
    broker.start()
    send(broker, "test.new-trigger", id="after", partitionkey=KEY_A)
    wait_for_state(broker, "before-2", "shop/first", "delivered")
    wait_for_state(broker, "after", "shop/first", "delivered")
    wait_for_state(broker, "after", "shop/second", "delivered")
    assert sub.ids("/second") == ["after"]
