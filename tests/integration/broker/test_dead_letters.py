"""Dead letters: the original event with Knative's error extensions, or the local table.

Each test runs on both broker classes; a RabbitMQBroker rightly differs (docs/broker.md,
"Broker classes: RabbitMQBroker"): it acks a status it does not retry as delivered, carries no
`knativeerrordata`, and drops with a warning what no sink takes (it has no local table).
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import decoded_error_data, send, wait_for_state
from tests.support.broker_classes import BrokerClass
from tests.support.broker_process import BrokerProcess
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Answer, always


def test_the_dead_letter_sink_gets_the_original_event_with_error_extensions(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    answer = json.dumps({"error": "sku unknown"}).encode()
    sub = subscriber_factory(lambda n, r: Answer(422, {"Content-Type": "application/json"}, answer))
    dead = subscriber_factory()
    delivery = {"retry": 3, "deadLetterSink": {"uri": f"{dead.url}/dlq"}}
    broker = start_broker(
        [
            broker_class.broker(),
            broker_class.trigger("t", {"uri": f"{sub.url}/orders"}, delivery=delivery),
        ]
    )
    event = send(broker, "test.order", {"sku": "x"}, subject="o-9")
    if broker_class.rabbitmq:
        # 422 is not retried, and a RabbitMQBroker acks it as delivered (RabbitMQBroker table).
        document = wait_for_state(broker, event.id, broker_class.key("t"), "delivered")
        assert [(a["status"], a["outcome"]) for a in document["attempts"]] == [
            (422, "acked_not_retryable")
        ]
        assert len(sub.received()) == 1 and dead.received() == []
        return
    (letter,) = dead.wait_for(1)
    assert len(sub.received()) == 1  # 422 is not retried
    assert letter.path == "/dlq"
    original = letter.event()
    assert original.id == event.id
    assert original.attributes["subject"] == "o-9"
    assert json.loads(letter.body) == {"sku": "x"}
    assert original.attributes["knativeerrordest"] == f"{sub.url}/orders"
    assert original.attributes["knativeerrorcode"] == "422"
    assert decoded_error_data(str(original.attributes["knativeerrordata"])) == answer
    assert "knativearrivaltime" in original.attributes
    wait_for_state(broker, event.id, broker_class.key("t"), "dead_lettered")


def test_knativeerrordata_is_cut_at_1024_characters(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    if broker_class.rabbitmq:
        pytest.skip("a RabbitMQBroker carries no knativeerrordata (docs/broker.md)")
    long_body = b"x" * 3000
    sub = subscriber_factory(lambda n, r: Answer(400, {}, long_body))
    dead = subscriber_factory()
    delivery = {"deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    send(broker, "test.long")
    data = dead.wait_for(1)[0].headers["ce-knativeerrordata"]
    assert len(data) == 1024
    assert data == base64.b64encode(long_body).decode()[:1024]


def test_without_a_sink_a_failed_event_is_kept_in_the_local_dead_letter_table(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory(always(500))
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery={"retry": 1})]
    )
    event = send(broker, "test.lost")
    if broker_class.rabbitmq:
        # No local dead-letter table: dropped, and the log says so (RabbitMQBroker section).
        wait_for_state(broker, event.id, broker_class.key("t"), "dropped")
        assert broker.get("/_shop/deadletters")["dead_letters"] == []
        assert_logged_as(broker, event.id, "dropped")
        return
    wait_for_state(broker, event.id, broker_class.key("t"), "kept")
    (kept,) = broker.get("/_shop/deadletters")["dead_letters"]
    assert kept["id"] == event.id
    assert kept["trigger"] == broker_class.key("t")
    assert kept["knativeerrorcode"] == 500
    assert kept["knativeerrordest"] == sub.url
    assert "no dead-letter sink" in kept["reason"]
    assert_logged_as(broker, event.id, "kept")


def assert_logged_as(broker: BrokerProcess, event_id: str, outcome: str) -> None:
    """The broker logged a warning with this outcome for the event."""
    lines = wait_for(
        lambda: [r for r in broker.log_records() if r.get("outcome") == outcome] or None,
        what=f"a log line for the {outcome} event",
    )
    assert lines[0]["level"] == "warning"
    assert lines[0]["event_id"] == event_id


def test_an_event_the_dead_letter_sink_refuses_is_kept_locally(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub, dead = subscriber_factory(always(503)), subscriber_factory(always(500))
    delivery = {"retry": 1, "deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    event = send(broker, "test.double-fault")
    # A RabbitMQBroker drops what its sink refuses, with a warning (RabbitMQBroker section).
    final = "dropped" if broker_class.rabbitmq else "kept"
    document = wait_for_state(broker, event.id, broker_class.key("t"), final)
    assert len(dead.received()) == 2  # the sink gets the same retries
    assert [a["target"] for a in document["attempts"]] == [
        "subscriber",
        "subscriber",
        "dead_letter_sink",
        "dead_letter_sink",
    ]
    if broker_class.rabbitmq:
        assert broker.get("/_shop/deadletters")["dead_letters"] == []
        assert_logged_as(broker, event.id, "dropped")
        return
    (kept,) = broker.get("/_shop/deadletters")["dead_letters"]
    assert kept["knativeerrorcode"] == 503  # the subscriber's failure, not the sink's
    assert "dead-letter sink failed" in kept["reason"]
