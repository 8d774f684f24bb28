"""Replies: an event in a subscriber's answer re-enters the broker; the hop counter ends loops.

Each test runs on both broker classes; a RabbitMQBroker acks the refused reply at the end of a
loop (a 400) as delivered (docs/broker.md, "Broker classes: RabbitMQBroker").
"""

from __future__ import annotations

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import journal_event, send, wait_for_state
from tests.support.broker_classes import BrokerClass
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Answer, Received, Script, by_path, reply
from wire.http_binding import WireEvent


def answer_with(event_type: str) -> Script:
    def make(n: int, received: Received) -> WireEvent:
        return wire_event(event_type, {"for": received.headers["ce-id"]}, source="/answerer")

    return reply(make)


def test_a_reply_re_enters_the_broker_with_new_arrival_time_and_one_hop_less(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory(by_path({"/ask": answer_with("test.answer")}))
    broker = start_broker(
        [
            broker_class.broker(),
            broker_class.trigger(
                "ask", {"uri": f"{sub.url}/ask"}, filter={"attributes": {"type": "test.ask"}}
            ),
            broker_class.trigger(
                "answer",
                {"uri": f"{sub.url}/answer"},
                filter={"attributes": {"type": "test.answer"}},
            ),
        ]
    )
    question = send(broker, "test.ask")
    (answer,) = sub.wait_for(1, path="/answer")
    (asked,) = sub.received("/ask")
    assert "ce-knativebrokerttl" not in answer.headers
    assert answer.headers["ce-knativearrivaltime"] > asked.headers["ce-knativearrivaltime"]
    reply_entry = journal_event(broker, answer.headers["ce-id"])
    assert reply_entry["attributes"]["knativebrokerttl"] == 254
    question_entry = wait_for_state(broker, question.id, broker_class.key("ask"), "delivered")
    assert reply_entry["reply_to"] == {
        "seq": question_entry["seq"],
        "trigger": broker_class.key("ask"),
    }
    assert question_entry["attempts"][0]["reply_seq"] == reply_entry["seq"]


def test_a_reply_loop_ends_when_the_hop_counter_runs_out(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    loop = subscriber_factory(answer_with("test.again"))
    dead = subscriber_factory()
    delivery = {"retry": 2, "deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("echo", {"uri": loop.url}, delivery=delivery)]
    )
    send(broker, "test.start", knativebrokerttl=5)  # 4 after the ingress: 4 hops, then refused
    if broker_class.rabbitmq:
        # The last reply is refused with 400, not retried: acked (RabbitMQBroker table).
        last = wait_for(lambda: loop.received()[3:4] or None, what="the fourth hop")[0]
        document = wait_for_state(
            broker, last.headers["ce-id"], broker_class.key("echo"), "delivered"
        )
        (attempt,) = document["attempts"]
        assert (attempt["status"], attempt["outcome"]) == (400, "acked_not_retryable")
        assert len(loop.received()) == 4 and dead.received() == []
        assert len(broker.get("/_shop/events")["events"]) == 4
        return
    (letter,) = dead.wait_for(1)
    received = loop.received()
    assert len(received) == 4
    # The last event's reply was refused (400, not retried): that event is dead-lettered.
    assert letter.headers["ce-id"] == received[-1].headers["ce-id"]
    assert letter.headers["ce-knativeerrorcode"] == "400"
    assert letter.headers["ce-knativeerrordest"] == broker.ingress()
    assert len(broker.get("/_shop/events")["events"]) == 4


def test_a_reply_that_is_not_a_valid_event_fails_as_502(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    broken = Answer(200, {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"}, b"")
    sub, dead = subscriber_factory(lambda n, r: broken), subscriber_factory()
    delivery = {"retry": 1, "deadLetterSink": {"uri": dead.url}}
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url}, delivery=delivery)]
    )
    send(broker, "test.bad-reply")
    (letter,) = dead.wait_for(1)
    assert len(sub.received()) == 2
    assert letter.headers["ce-knativeerrorcode"] == "502"
