"""Retries: Knative's retry table, the core back-off formula, timeouts, Retry-After, delivery specs.

Waits are measured where Knative's behaviour shows: as gaps between the attempts the subscriber
saw. Each gap must be at least the expected wait (less timer slack) and not much more.

Each test runs on both broker classes; where a RabbitMQBroker rightly differs (docs/broker.md,
"Broker classes: RabbitMQBroker": a status not retried is acked, no delivery spec means no
retries, `retry` 5 when a spec leaves it out, no `knativeerrordata`) the test says so.
"""

from __future__ import annotations

import itertools

import pytest

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import decoded_error_data, send, wait_for_state
from tests.support.broker_classes import BrokerClass
from tests.support.scripted_subscriber import (
    Received,
    always,
    body,
    by_path,
    fail_times,
    sleep,
)

EARLY = 0.02  # timers may fire this much early on a loaded machine
LATE = 0.25  # and this much late


def gaps(received: list[Received]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(received)]


def assert_waits(received: list[Received], expected: list[float]) -> None:
    measured = gaps(received)
    assert len(measured) == len(expected), measured
    for got, want in zip(measured, expected, strict=True):
        assert want - EARLY <= got <= want + LATE, f"waits {measured}, expected {expected}"


@pytest.mark.parametrize(
    ("delivery", "waits"),
    [
        ({"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"}, [0.0, 0.2, 0.4]),
        ({"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.1S"}, [0.1, 0.2, 0.4]),
    ],
    ids=["linear", "exponential"],
)
def test_back_off_waits_follow_the_core_formula(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: BrokerClass,
    delivery: dict[str, object],
    waits: list[float],
) -> None:
    sub = subscriber_factory(fail_times(3, 503))
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    event = send(broker, "test.backoff")
    received = sub.wait_for(4)
    assert_waits(received, waits)
    document = wait_for_state(broker, event.id, broker_class.key("t"), "delivered")
    assert [a["status"] for a in document["attempts"]] == [503, 503, 503, 200]
    assert [a["outcome"] for a in document["attempts"]] == ["retry", "retry", "retry", "delivered"]


def test_a_broker_without_delivery_gets_the_cluster_default(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory(fail_times(2, 500))
    broker = start_broker([broker_class.broker(), broker_class.trigger("t", {"uri": sub.url})])
    event = send(broker, "test.default")
    if broker_class.rabbitmq:
        # No delivery spec: no retries at all, and no sink: dropped (RabbitMQBroker table).
        document = wait_for_state(broker, event.id, broker_class.key("t"), "dropped")
        assert [a["status"] for a in document["attempts"]] == [500]
        assert len(sub.received()) == 1
        return
    assert_waits(sub.wait_for(3), [0.2, 0.4])  # retry 10, exponential, PT0.2S


RETRIED = [404, 408, 409, 429, 500, 502, 503, 504]
FINAL = [400, 401, 403, 413, 422, 301]


def test_knatives_retry_table(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    """Each status has its own trigger and path; retried ones get retry + 1 = 3 attempts."""
    statuses = RETRIED + FINAL
    sub = subscriber_factory(
        by_path({f"/s{status}": always(status) for status in statuses}, always(202))
    )
    broker = start_broker(
        [
            broker_class.broker(
                delivery={"retry": 2, "deadLetterSink": {"uri": f"{sub.url}/dead"}}
            ),
            *[
                broker_class.trigger(
                    f"s{status}",
                    {"uri": f"{sub.url}/s{status}"},
                    filter={"attributes": {"type": f"test.s{status}"}},
                )
                for status in statuses
            ],
        ]
    )
    sent = {status: send(broker, f"test.s{status}").id for status in statuses}
    # A RabbitMQBroker acks a status it does not retry as delivered (RabbitMQBroker table).
    dead_lettered = RETRIED if broker_class.rabbitmq else statuses
    dead = sub.wait_for(len(dead_lettered), path="/dead", timeout=15)
    codes = sorted(int(r.headers["ce-knativeerrorcode"]) for r in dead)
    assert codes == sorted(dead_lettered)
    if broker_class.rabbitmq:
        for status in FINAL:
            trigger = broker_class.key(f"s{status}")
            document = wait_for_state(broker, sent[status], trigger, "delivered")
            assert [a["outcome"] for a in document["attempts"]] == ["acked_not_retryable"]
    for status in RETRIED:
        assert len(sub.received(f"/s{status}")) == 3, status
    for status in FINAL:
        assert len(sub.received(f"/s{status}")) == 1, status


def test_a_connection_error_is_retried_and_reported_as_500(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    from tests.support.processes import free_port

    dead = subscriber_factory()
    nowhere = f"http://127.0.0.1:{free_port()}/gone"
    trigger = broker_class.trigger(
        "t", {"uri": nowhere}, delivery={"retry": 2, "deadLetterSink": {"uri": dead.url}}
    )
    broker = start_broker([broker_class.broker(), trigger])
    event = send(broker, "test.unreachable")
    (letter,) = dead.wait_for(1)
    assert letter.headers["ce-id"] == event.id
    assert letter.headers["ce-knativeerrorcode"] == "500"
    assert letter.headers["ce-knativeerrordest"] == nowhere
    if broker_class.rabbitmq:
        assert "ce-knativeerrordata" not in letter.headers  # RabbitMQBroker table
    else:
        error_data = decoded_error_data(letter.headers["ce-knativeerrordata"])
        assert error_data.startswith(b"dispatch error:")
    document = wait_for_state(broker, event.id, broker_class.key("t"), "dead_lettered")
    assert [a["outcome"] for a in document["attempts"]] == [
        "retry",
        "retry",
        "failed",
        "dead_lettered",
    ]


def test_each_attempt_times_out_after_the_delivery_timeout(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub, dead = subscriber_factory(sleep(2.0, 202)), subscriber_factory()
    delivery = {"retry": 1, "timeout": "PT0.3S", "deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    event = send(broker, "test.slow")
    (letter,) = dead.wait_for(1, timeout=5)
    attempts = sub.received()
    assert len(attempts) == 2
    assert_waits(attempts, [0.3])  # the timeout, then no back-off
    assert letter.headers["ce-knativeerrorcode"] == "500"
    if broker_class.rabbitmq:
        assert "ce-knativeerrordata" not in letter.headers  # RabbitMQBroker table
    else:
        assert b"timeout" in decoded_error_data(letter.headers["ce-knativeerrordata"])
    assert letter.at - attempts[0].at < 1.5  # nobody waited for the 2 s answers
    wait_for_state(broker, event.id, broker_class.key("t"), "dead_lettered")


@pytest.mark.parametrize(
    "case",
    [
        (
            429,
            "1",
            {"backoffPolicy": "linear", "backoffDelay": "PT0.1S", "retryAfterMax": "PT3S"},
            1.0,
        ),
        (
            503,
            "5",
            {"backoffPolicy": "exponential", "backoffDelay": "PT0.1S", "retryAfterMax": "PT0.5S"},
            0.5,
        ),
        (
            503,
            "0",
            {"backoffPolicy": "exponential", "backoffDelay": "PT0.3S", "retryAfterMax": "PT2S"},
            0.3,
        ),
        (429, "1", {"backoffPolicy": "exponential", "backoffDelay": "PT0.1S"}, 0.1),
        (
            500,
            "1",
            {"backoffPolicy": "exponential", "backoffDelay": "PT0.1S", "retryAfterMax": "PT3S"},
            0.1,
        ),
    ],
    ids=["429-honoured", "503-capped", "backoff-longer", "no-retryAfterMax", "500-ignored"],
)
def test_retry_after_is_honoured_only_for_429_and_503_with_retry_after_max(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: BrokerClass,
    case: tuple[int, str, dict[str, object], float],
) -> None:
    status, retry_after, delivery, wait = case
    sub = subscriber_factory(fail_times(1, status, headers={"Retry-After": retry_after}))
    trigger = broker_class.trigger("t", {"uri": sub.url}, delivery={"retry": 1, **delivery})
    broker = start_broker([broker_class.broker(), trigger])
    send(broker, "test.retry-after")
    assert_waits(sub.wait_for(2, timeout=5), [wait])


def test_a_trigger_delivery_replaces_the_brokers_wholesale(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory(
        by_path({"/dead-broker": always(202), "/dead-trigger": always(202)}, always(503))
    )
    broker = start_broker(
        [
            broker_class.broker(
                delivery={
                    "retry": 2,
                    "backoffPolicy": "linear",
                    "backoffDelay": "PT0.01S",
                    "deadLetterSink": {"uri": f"{sub.url}/dead-broker"},
                }
            ),
            # No delivery: the broker's, whole.
            broker_class.trigger("inherits", {"uri": f"{sub.url}/inherits"}),
            # Only a dead-letter sink: no retries at all (Knative's replace-wholesale rule).
            broker_class.trigger(
                "own-sink",
                {"uri": f"{sub.url}/own-sink"},
                delivery={"deadLetterSink": {"uri": f"{sub.url}/dead-trigger"}},
            ),
            # Only retries: the dead-letter sink still falls back to the broker's.
            broker_class.trigger(
                "own-retry", {"uri": f"{sub.url}/own-retry"}, delivery={"retry": 1}
            ),
        ]
    )
    send(broker, "test.wholesale")
    sub.wait_for(2, path="/dead-broker")
    sub.wait_for(1, path="/dead-trigger", timeout=15)
    assert len(sub.received("/inherits")) == 3
    # Only a sink: the MT broker's retry is unset, 0; a RabbitMQBroker's dispatcher takes 5
    # when a delivery spec leaves `retry` out (RabbitMQBroker table), 50 ms exponential.
    own_sink_attempts = 6 if broker_class.rabbitmq else 1
    assert len(sub.received("/own-sink")) == own_sink_attempts
    assert len(sub.received("/own-retry")) == 2
    dests = {r.headers["ce-knativeerrordest"] for r in sub.received("/dead-broker")}
    assert dests == {f"{sub.url}/inherits", f"{sub.url}/own-retry"}


def test_a_2xx_answer_with_a_body_that_is_not_an_event_fails_as_502(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub, dead = subscriber_factory(body(b"OK")), subscriber_factory()
    delivery = {"retry": 1, "deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    event = send(broker, "test.flask-ok")
    (letter,) = dead.wait_for(1)
    assert len(sub.received()) == 2
    assert letter.headers["ce-knativeerrorcode"] == "502"
    if broker_class.rabbitmq:
        assert "ce-knativeerrordata" not in letter.headers  # RabbitMQBroker table
    else:
        assert decoded_error_data(letter.headers["ce-knativeerrordata"]) == b"OK"
    document = wait_for_state(broker, event.id, broker_class.key("t"), "dead_lettered")
    assert [a["status"] for a in document["attempts"]] == [502, 502, 202]
