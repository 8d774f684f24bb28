"""The RabbitMQBroker data plane against the real RabbitMQ (127.0.0.1:5672, guest/guest).

Each test uses its own namespace, so its exchanges and queues (named after the Broker's UID,
the uuid5 of `<namespace>/<name>`) are its own; they are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
import requests

from shop.broker.rabbitmq import naming
from tests.integration.broker.conftest import NewSubscriber, StartBroker, StartIdentityBroker
from tests.integration.broker.helpers import verified
from tests.support.broker_process import (
    BrokerProcess,
    broker_manifest,
    service_manifest,
    trigger_manifest,
)
from tests.support.events import wire_event
from tests.support.oidc import RunningIssuer
from tests.support.processes import free_port, wait_for
from tests.support.rabbitmq import AMQP, delete_broker, require_rabbitmq
from tests.support.scripted_subscriber import Answer, Received, always, by_path, fail_times, reply
from wire.http_binding import WireEvent, to_binary
from wire.oidc.subjects import broker_audience, trigger_subject

CLASS = {"eventing.knative.dev/broker.class": "RabbitMQBroker"}


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test's own; its RabbitMQ objects are deleted afterwards."""
    require_rabbitmq()
    ns = f"rmq-{uuid.uuid4().hex[:8]}"
    yield ns
    delete_broker(ns, "default", ("sub", "a", "b", "dl", "ask", "stranger", "answer"))


def rabbit_broker(ns: str, **spec: Any) -> dict[str, Any]:
    manifest = broker_manifest(namespace=ns, **spec)
    manifest["metadata"]["annotations"] = dict(CLASS)
    return manifest


def ingress(broker: BrokerProcess, ns: str) -> str:
    return broker.ingress(namespace=ns)


def post(url: str, event_type: str, event_id: str | None = None) -> requests.Response:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id or uuid.uuid4().hex,
        "ce-type": event_type,
        "ce-source": "/test",
        "content-type": "application/json",
    }
    return requests.post(url, headers=headers, data=b'{"n": 1}', timeout=10)


def test_events_are_delivered_through_rabbitmq_by_the_headers_binding(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    a, b = subscriber_factory(always(200)), subscriber_factory(always(200))
    manifests = [
        rabbit_broker(namespace),
        service_manifest("a", namespace=namespace),
        service_manifest("b", namespace=namespace),
        trigger_manifest(
            "a", "a", namespace=namespace, filter={"attributes": {"type": "order.created"}}
        ),
        trigger_manifest("b", "b", namespace=namespace),
    ]
    broker = start_broker(manifests, {"a": a.url, "b": b.url})
    url = ingress(broker, namespace)
    assert _until_accepted(url, "order.created").status_code == 202
    assert post(url, "payment.done").status_code == 202
    assert [r.headers["ce-type"] for r in b.wait_for(2)] == ["order.created", "payment.done"]
    got = a.wait_for(1)
    assert got[0].headers["ce-type"] == "order.created"
    assert got[0].body == b'{"n": 1}' and "ce-knativebrokerttl" not in got[0].headers
    assert len(a.received()) == 1


def _until_accepted(url: str, event_type: str) -> requests.Response:
    """The first 202 (the ingress answers 503 until its RabbitMQ connection is up)."""
    return wait_for(
        lambda: r if (r := post(url, event_type)).status_code == 202 else None,
        timeout=15,
        what="the RabbitMQ ingress to answer 202",
    )


def test_the_ingress_answers_503_while_rabbitmq_is_unreachable(
    start_broker: StartBroker, namespace: str
) -> None:
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    broker = start_broker([rabbit_broker(namespace)], {}, "--rabbitmq", closed)
    response = post(ingress(broker, namespace), "order.created")
    assert response.status_code == 503, response.text
    assert post(ingress(broker, namespace) + "x", "t").status_code == 404


def test_failures_are_retried_then_dead_lettered_with_the_error_extensions(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    sub, dls = subscriber_factory(always(503)), subscriber_factory(always(200))
    delivery = {
        "retry": 2,
        "backoffPolicy": "linear",
        "backoffDelay": "PT0.2S",
        "deadLetterSink": {"uri": dls.url + "/dead"},
    }
    manifests = [
        rabbit_broker(namespace),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace, delivery=delivery),
    ]
    broker = start_broker(manifests, {"sub": sub.url})
    _until_accepted(ingress(broker, namespace), "order.created")
    dead = dls.wait_for(1, timeout=15)[0]
    attempts = sub.received()
    assert len(attempts) == 3
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert 0.0 <= gaps[0] < 0.15 and 0.18 <= gaps[1] < 0.6, gaps  # linear: 0, then 0.2 s
    assert dead.headers["ce-knativeerrorcode"] == "503"
    assert dead.headers["ce-knativeerrordest"] == sub.url


def test_a_400_is_acked_as_delivered_not_dead_lettered(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    sub, dls = subscriber_factory(always(400)), subscriber_factory(always(200))
    delivery = {"retry": 3, "deadLetterSink": {"uri": dls.url}}
    manifests = [
        rabbit_broker(namespace),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace, delivery=delivery),
    ]
    broker = start_broker(manifests, {"sub": sub.url})
    _until_accepted(ingress(broker, namespace), "order.created")
    sub.wait_for(1)
    assert post(ingress(broker, namespace), "second").status_code == 202
    sub.wait_for(2)  # the first was acked: the queue moved on
    assert len(sub.received()) == 2 and dls.received() == []


def test_parallelism_1_keeps_the_order_and_events_survive_kill_9(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    sub = subscriber_factory(fail_times(0))
    # The first attempt fails, the retry waits 5 s: the events are held unacked (or queued).
    delivery = {"retry": 5, "backoffPolicy": "exponential", "backoffDelay": "PT5S"}
    manifests = [
        rabbit_broker(namespace),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace, delivery=delivery),
    ]
    # First run: the subscriber's endpoint is a closed port; then kill -9 with nothing acked.
    closed = f"http://127.0.0.1:{free_port()}"
    broker = start_broker(manifests, {"sub": closed})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    ids = [f"e{n:03d}" for n in range(50)]
    for event_id in ids:
        assert post(url, "order.created", event_id).status_code == 202
    broker.kill()
    broker = start_broker(manifests, {"sub": sub.url})
    got = sub.wait_for(51, timeout=30)
    seen = [r.headers["ce-id"] for r in got if r.headers["ce-type"] == "order.created"]
    assert seen == ids  # one worker: in the order they were published
    delivered = f'shop_broker_events_delivered_total{{trigger="{namespace}/sub"}}'
    assert broker.metrics().get(delivered) == 51


def _journal_event(broker: BrokerProcess, seq: int) -> dict[str, Any]:
    found: dict[str, Any] = broker.get(f"/_shop/events/{seq}")
    return found


def _finished(broker: BrokerProcess, seq: int, trigger: str, state: str) -> dict[str, Any]:
    """The journal's event `seq` once `trigger`'s delivery is in `state`."""

    def done() -> dict[str, Any] | None:
        event = _journal_event(broker, seq)
        states = {d["trigger"]: d["state"] for d in event["deliveries"]}
        return event if states.get(trigger) == state else None

    return wait_for(done, timeout=15, what=f"event {seq}: {trigger} {state}")


def _seq_of(broker: BrokerProcess, event_id: str) -> int:
    events = broker.get("/_shop/events?limit=1000")["events"]
    seqs = [int(e["seq"]) for e in events if e["id"] == event_id]
    assert len(seqs) == 1, events
    return seqs[0]


def test_the_journal_shows_a_rabbitmq_event_with_its_attempts_and_outcome(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    # Every event's first attempt fails, its second succeeds.
    sub = subscriber_factory(lambda n, received: Answer(503 if n % 2 == 0 else 200))
    delivery = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.1S"}
    manifests = [
        rabbit_broker(namespace),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace, delivery=delivery),
    ]
    broker = start_broker(manifests, {"sub": sub.url})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    assert post(url, "order.created", "journaled").status_code == 202
    seq = _seq_of(broker, "journaled")
    trigger = f"{namespace}/sub"
    event = _finished(broker, seq, trigger, "delivered")
    assert event["broker"] == f"{namespace}/default" and event["type"] == "order.created"
    assert event["data"] == {"n": 1} and event["reply_to"] is None
    assert event["deliveries"] == [{"trigger": trigger, "state": "delivered", "attempts": 2}]
    attempts = [(a["attempt"], a["target"], a["status"], a["outcome"]) for a in event["attempts"]]
    assert attempts == [(1, "subscriber", 503, "retry"), (2, "subscriber", 200, "delivered")]
    assert {a["url"] for a in event["attempts"]} == {sub.url}
    # The journal row does not make the store's dispatcher deliver the event a second time.
    assert [r.headers["ce-id"] for r in sub.received()].count("journaled") == 2


def test_a_reply_goes_through_rabbitmq_and_the_journal_links_it_to_its_event(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    from tests.support.scripted_subscriber import reply
    from wire.http_binding import WireEvent

    def answer(n: int, received: Any) -> WireEvent | None:
        if received.headers["ce-type"] != "order.created":
            return None
        attributes = {"specversion": "1.0", "id": "r1", "type": "payment.done", "source": "/a"}
        return WireEvent(attributes, None)

    a, b = subscriber_factory(reply(answer)), subscriber_factory(always(200))
    manifests = [
        rabbit_broker(namespace),
        service_manifest("a", namespace=namespace),
        service_manifest("b", namespace=namespace),
        trigger_manifest("a", "a", namespace=namespace),
        trigger_manifest("b", "b", namespace=namespace),
    ]
    broker = start_broker(manifests, {"a": a.url, "b": b.url})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    assert post(url, "order.created", "o1").status_code == 202
    got = {r.headers["ce-type"]: r for r in b.wait_for(3)}
    assert "ce-knativebrokerttl" not in got["payment.done"].headers
    assert "ce-knativearrivaltime" in got["payment.done"].headers
    parent = _seq_of(broker, "o1")
    child = _seq_of(broker, "r1")
    assert _journal_event(broker, child)["reply_to"] == {"seq": parent, "trigger": f"{namespace}/a"}
    event = _finished(broker, parent, f"{namespace}/a", "delivered")
    by_trigger = {a["trigger"]: a for a in event["attempts"]}
    assert by_trigger[f"{namespace}/a"]["reply_seq"] == child


def test_a_publish_rabbitmq_nacks_is_answered_500_and_journaled_as_refused(
    start_broker: StartBroker, namespace: str
) -> None:
    broker = start_broker([rabbit_broker(namespace)], {})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    full = f"{namespace}.full"
    asyncio.run(
        _bind_full_queue(full, naming.broker_exchange(namespace, "default", _uid(namespace)))
    )
    try:
        response = post(url, "order.created", "nacked")
        assert response.status_code == 500, response.text
        assert "nack" in response.json()["error"]
        seq = _seq_of(broker, "nacked")
        (attempt,) = _journal_event(broker, seq)["attempts"]
        assert (attempt["target"], attempt["status"], attempt["outcome"]) == (
            "rabbitmq",
            500,
            "refused",
        )
    finally:
        asyncio.run(_delete_queue(full))


def _uid(ns: str) -> str:
    return naming.broker_uid(ns, "default")


async def _bind_full_queue(name: str, exchange: str) -> None:
    """A queue that refuses every message (x-max-length 0, reject-publish), bound to `exchange`."""
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    arguments = {"x-max-length": 0, "x-overflow": "reject-publish"}
    queue = await channel.declare_queue(name, durable=False, arguments=arguments)
    await queue.bind(exchange, arguments={"x-match": "all"})
    await connection.close()


async def _delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    await channel.queue_delete(name)
    await connection.close()


def test_parallelism_4_delivers_four_events_at_once(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    # The warm-up event is answered at once, the others after 1 s.
    sub = subscriber_factory(lambda n, received: Answer(200, delay=0.0 if n == 0 else 1.0))
    trigger = trigger_manifest("sub", "sub", namespace=namespace)
    trigger["metadata"]["annotations"] = {"rabbitmq.eventing.knative.dev/parallelism": "4"}
    manifests = [rabbit_broker(namespace), service_manifest("sub", namespace=namespace), trigger]
    broker = start_broker(manifests, {"sub": sub.url})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    delivered = f'shop_broker_events_delivered_total{{trigger="{namespace}/sub"}}'
    wait_for(lambda: broker.metrics().get(delivered) == 1, timeout=10, what="the warm-up")
    for n in range(4):
        assert post(url, "order.created", f"p{n}").status_code == 202
    got = sub.wait_for(5, timeout=15)[1:]
    # Each answer takes 1 s: the four arrived before the first was answered.
    assert max(r.at for r in got) - min(r.at for r in got) < 0.9


def test_the_broker_dead_letter_queue_takes_a_trigger_failure_to_the_broker_sink(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    sub, dls = subscriber_factory(always(503)), subscriber_factory(always(200))
    manifests = [
        rabbit_broker(
            namespace, delivery={"retry": 1, "deadLetterSink": {"uri": dls.url + "/broker"}}
        ),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace),
    ]
    broker = start_broker(manifests, {"sub": sub.url})
    _until_accepted(ingress(broker, namespace), "order.created")
    dead = dls.wait_for(1, timeout=15)[0]
    assert dead.path == "/broker"
    assert dead.headers["ce-knativeerrordest"] == sub.url
    assert dead.headers["ce-knativeerrorcode"] == "503"
    assert len(sub.received()) == 2  # the Broker's delivery spec: one retry
    trigger = f"{namespace}/sub"
    seq = int(broker.get("/_shop/events?limit=1")["events"][0]["seq"])
    event = _finished(broker, seq, trigger, "dead_lettered")
    attempts = [(a["target"], a["status"], a["outcome"]) for a in event["attempts"]]
    assert attempts == [
        ("subscriber", 503, "retry"),
        ("subscriber", 503, "failed"),
        ("dead_letter_sink", 200, "dead_lettered"),
    ]


def test_shop_status_shows_the_messages_queued_for_a_rabbitmq_trigger(
    start_broker: StartBroker, namespace: str
) -> None:
    from shop.inspect.endpoints import LocalShop
    from shop.inspect.local import LocalTarget, local_status

    # The subscriber is a closed port and the retry waits 30 s: the dispatcher holds its
    # prefetch of 100 unacked, and what is posted beyond that stays ready in the queue.
    delivery = {"retry": 1, "backoffPolicy": "exponential", "backoffDelay": "PT30S"}
    manifests = [
        rabbit_broker(namespace),
        service_manifest("sub", namespace=namespace),
        trigger_manifest("sub", "sub", namespace=namespace, delivery=delivery),
    ]
    broker = start_broker(manifests, {"sub": f"http://127.0.0.1:{free_port()}"})
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    for n in range(109):
        assert post(url, "order.created", f"q{n}").status_code == 202
    shop = LocalShop({"broker": url}, broker.database)

    def queued() -> int | None:
        (trigger,) = local_status(LocalTarget(shop, None)).triggers
        return trigger.queued or None

    assert wait_for(queued, timeout=10, what="messages ready in the queue") == 10


def test_retention_keeps_an_event_rabbitmq_holds_and_prunes_a_finished_one(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, namespace: str
) -> None:
    # Trigger a's subscriber fails and its retries wait 30 s: its dispatcher holds the first
    # event, the second waits in the queue. Trigger b's events are delivered at once.
    stuck = {"retry": 5, "backoffPolicy": "exponential", "backoffDelay": "PT30S"}
    a, b = subscriber_factory(always(503)), subscriber_factory(always(200))
    manifests = [
        rabbit_broker(namespace),
        service_manifest("a", namespace=namespace),
        service_manifest("b", namespace=namespace),
        trigger_manifest(
            "a", "a", namespace=namespace, delivery=stuck, filter={"attributes": {"type": "slow"}}
        ),
        trigger_manifest("b", "b", namespace=namespace, filter={"attributes": {"type": "fast"}}),
    ]
    broker = start_broker(manifests, {"a": a.url, "b": b.url}, "--retention-age", "1")
    url = ingress(broker, namespace)
    _until_accepted(url, "warm-up")
    for event_id, event_type in (("held", "slow"), ("waiting", "slow"), ("done", "fast")):
        assert post(url, event_type, event_id).status_code == 202
    b.wait_for(1)

    def ids() -> list[str]:
        return [e["id"] for e in broker.get("/_shop/events?limit=1000")["events"]]

    # The sweep goes oldest first: once `done` is pruned, the two before it were passed over.
    wait_for(lambda: "done" not in ids(), timeout=15, what="the delivered event to be pruned")
    assert ids() == ["held", "waiting"]
    events = broker.get("/_shop/events?limit=1000")["events"]
    trigger = f"{namespace}/a"
    assert [e["deliveries"] for e in events] == [
        [{"trigger": trigger, "state": "queued", "attempts": 1}],  # retrying
        [{"trigger": trigger, "state": "queued", "attempts": 0}],  # in the queue
    ]
    assert len(a.received()) == 1


def test_with_sender_identity_a_delivery_carries_its_triggers_token_and_a_reply_is_authorized(
    start_identity_broker: StartIdentityBroker,
    subscriber_factory: NewSubscriber,
    oidc_issuer: RunningIssuer,
    namespace: str,
) -> None:
    def answer(n: int, received: Received) -> WireEvent:
        return wire_event("test.answer", source="/answerer")

    audience = "ask.example"
    sub = subscriber_factory(by_path({"/ask": reply(answer), "/stranger": reply(answer)}))
    asked = {"attributes": {"type": "test.ask"}}
    producer = f"system:serviceaccount:{namespace}:producer"
    manifests = [
        rabbit_broker(namespace),
        trigger_manifest(
            "ask",
            {"uri": f"{sub.url}/ask", "audience": audience},
            namespace=namespace,
            filter=asked,
        ),
        trigger_manifest(
            "stranger", {"uri": f"{sub.url}/stranger"}, namespace=namespace, filter=asked
        ),
        trigger_manifest(
            "answer",
            {"uri": f"{sub.url}/answer"},
            namespace=namespace,
            filter={"attributes": {"type": "test.answer"}},
        ),
        _event_policy(namespace, "producers", {"sub": producer}),
        _event_policy(
            namespace,
            "replies",
            {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "name": "ask"}},
        ),
    ]
    broker = start_identity_broker(manifests)
    question = wire_event("test.ask")
    headers, body = to_binary(question)
    headers["Authorization"] = "Bearer " + oidc_issuer.mint(
        producer, broker_audience(namespace, "default")
    )
    wait_for(
        lambda: (
            requests.post(
                ingress(broker, namespace), headers=headers, data=body, timeout=5
            ).status_code
            == 202
        ),
        timeout=15,
        what="the RabbitMQ ingress to take the question",
    )
    (asked_request,) = sub.wait_for(1, path="/ask")
    token = verified(oidc_issuer, asked_request, audience)
    assert token.subject == trigger_subject(namespace, "ask")
    (stranger_request,) = sub.wait_for(1, path="/stranger")
    assert "authorization" not in stranger_request.headers
    (answered,) = sub.wait_for(1, path="/answer")
    assert answered.headers["ce-type"] == "test.answer"
    # The stranger's reply is refused with 403, which a RabbitMQBroker acks as delivered.
    seq = _seq_of(broker, question.id)
    event = _finished(broker, seq, f"{namespace}/stranger", "delivered")
    (attempt,) = [a for a in event["attempts"] if a["trigger"] == f"{namespace}/stranger"]
    assert (attempt["status"], attempt["outcome"]) == (403, "acked_not_retryable")
    refusals = [r for r in broker.log_records() if "refused an event" in r["message"]]
    assert [(r["status"], r["sender"]) for r in refusals] == [
        (403, trigger_subject(namespace, "stranger"))
    ]
    assert len(sub.received()) == 3


def _event_policy(namespace: str, name: str, sender: dict[str, Any]) -> dict[str, Any]:
    """An EventPolicy of the whole namespace with one `from` entry."""
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "EventPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"from": [sender]},
    }
