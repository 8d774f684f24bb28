"""The ingress: Knative's checks in Knative's order, the hop counter, arrival time, headers.

Each test runs on both broker classes (one broker per module and class); a RabbitMQBroker
does not carry pass-through headers (docs/broker.md, "Broker classes: RabbitMQBroker").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.broker_classes import BrokerClass
from tests.support.broker_process import BrokerProcess
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Received, ScriptedSubscriber, always
from wire.http_binding import to_binary, to_structured

ALLOW = "POST, OPTIONS"


@pytest.fixture(scope="module")
def subscriber() -> Iterator[ScriptedSubscriber]:
    subscriber = ScriptedSubscriber(always(202))
    yield subscriber
    subscriber.close()


@pytest.fixture(scope="module")
def classed(broker_class_name: str) -> Iterator[BrokerClass]:
    """The module's broker class (its RabbitMQ objects deleted after the module)."""
    chosen = BrokerClass.of(broker_class_name)
    yield chosen
    chosen.delete_objects()


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, subscriber: ScriptedSubscriber, classed: BrokerClass
) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        tmp_path_factory.mktemp("ingress"),
        [classed.broker(), classed.service("sink"), classed.trigger("all", "sink")],
        {"sink": subscriber.url},
    ).start()
    yield process
    process.stop()


def delivered(subscriber: ScriptedSubscriber, event_id: str) -> Received:
    """The request that delivered event `event_id` (waits for it)."""
    return wait_for(
        lambda: next(
            (r for r in subscriber.received() if r.headers.get("ce-id") == event_id), None
        ),
        what=f"delivery of {event_id}",
    )


def stored_attributes(broker: BrokerProcess, event_id: str) -> dict[str, object]:
    events = broker.get("/_shop/events?limit=1000")["events"]
    return next(e["attributes"] for e in events if e["id"] == event_id)


def test_options_is_the_webhook_handshake(broker: BrokerProcess) -> None:
    response = requests.options(broker.ingress(), timeout=5)
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "*"
    assert response.headers["WebHook-Allowed-Rate"] == "*"
    assert response.headers["Allow"] == ALLOW


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
def test_methods_other_than_post_are_refused_with_405(broker: BrokerProcess, method: str) -> None:
    response = requests.request(method, broker.ingress(), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == ALLOW


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 404),
        ("/{ns}", 400),
        ("/{ns}/default/extra", 400),
        ("/{ns}/default//", 400),
        ("/{ns}/nobroker", 404),
        ("/other/default", 404),
        ("/{ns}/default/", 202),
        ("/{ns}/default", 202),
    ],
)
def test_the_path_names_the_broker(
    broker: BrokerProcess, classed: BrokerClass, path: str, status: int
) -> None:
    headers, body = to_binary(wire_event("test.path", {"n": 1}))
    url = broker.url + path.format(ns=classed.namespace)
    response = requests.post(url, headers=headers, data=body, timeout=5)
    assert response.status_code == status, response.text
    assert response.headers["Allow"] == ALLOW
    if status != 202:
        assert "error" in response.json()


def test_a_binary_event_is_accepted_with_202_and_delivered(
    broker: BrokerProcess, subscriber: ScriptedSubscriber
) -> None:
    event = wire_event("test.binary", {"n": 1}, subject="s-1")
    headers, body = to_binary(event)
    response = requests.post(broker.ingress(), headers=headers, data=body, timeout=5)
    assert response.status_code == 202
    received = delivered(subscriber, event.id)
    assert received.body == body
    assert received.event().attributes["subject"] == "s-1"


def test_a_structured_event_is_accepted_and_delivered_in_binary_mode(
    broker: BrokerProcess, subscriber: ScriptedSubscriber
) -> None:
    event = wire_event("test.structured", {"n": 2}, count=3)
    headers, body = to_structured(event)
    assert requests.post(broker.ingress(), headers=headers, data=body, timeout=5).status_code == 202
    received = delivered(subscriber, event.id)
    assert received.headers["content-type"] == "application/json"
    assert json.loads(received.body) == {"n": 2}
    assert received.headers["ce-count"] == "3"


@pytest.mark.parametrize(
    ("headers", "body", "attribute"),
    [
        ({"Content-Type": "application/json"}, b'{"plain": "json"}', "specversion"),
        (
            {"Content-Type": "application/cloudevents-batch+json"},
            json.dumps([{"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}]).encode(),
            None,
        ),
        ({"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, b"", "id"),
        ({"ce-specversion": "0.2", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b"", None),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "", "ce-type": "t"}, b"", "source"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-Bad_Name": "x",
            },
            b"",
            "bad_name",
        ),
        (
            {"Content-Type": "application/cloudevents+json"},
            json.dumps({"specversion": "1.0", "source": "/s", "type": "t"}).encode(),
            "id",
        ),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json", None),
    ],
    ids=[
        "plain-json",
        "batch",
        "no-id",
        "unknown-specversion",
        "empty-source",
        "bad-attribute-name",
        "structured-no-id",
        "structured-not-json",
    ],
)
def test_what_is_not_one_valid_event_is_refused_with_400(
    broker: BrokerProcess, headers: dict[str, str], body: bytes, attribute: str | None
) -> None:
    response = requests.post(broker.ingress(), headers=headers, data=body, timeout=5)
    assert response.status_code == 400, response.text
    assert response.headers["Allow"] == ALLOW
    document = response.json()
    assert document["error"]
    if attribute is not None:
        assert document["attribute"] == attribute


def test_the_event_is_validated_before_the_broker_is_looked_up(
    broker: BrokerProcess, classed: BrokerClass
) -> None:
    response = requests.post(
        f"{broker.url}/{classed.namespace}/nobroker",
        headers={"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"},
        timeout=5,
    )
    assert response.status_code == 400


def test_the_ingress_stamps_the_arrival_time_over_any_given(
    broker: BrokerProcess, subscriber: ScriptedSubscriber
) -> None:
    event = wire_event("test.arrival", knativearrivaltime="2001-01-01T00:00:00Z")
    before = datetime.now(UTC)
    headers, body = to_binary(event)
    requests.post(broker.ingress(), headers=headers, data=body, timeout=5).raise_for_status()
    stamped = delivered(subscriber, event.id).headers["ce-knativearrivaltime"]
    assert stamped.endswith("Z")
    arrival = datetime.fromisoformat(stamped.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= arrival <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("given", "stored"),
    [(None, 255), ("10", 9), ("2", 1), ("not-a-number", 255), ("99999999999", 255)],
)
def test_the_hop_counter_is_set_or_decremented_and_hidden_from_subscribers(
    broker: BrokerProcess, subscriber: ScriptedSubscriber, given: str | None, stored: int
) -> None:
    extra = {} if given is None else {"knativebrokerttl": given}
    event = wire_event("test.ttl", **extra)
    headers, body = to_binary(event)
    assert requests.post(broker.ingress(), headers=headers, data=body, timeout=5).status_code == 202
    assert "ce-knativebrokerttl" not in delivered(subscriber, event.id).headers
    assert stored_attributes(broker, event.id)["knativebrokerttl"] == stored


@pytest.mark.parametrize("given", ["1", "0", "-4"])
def test_an_event_whose_hop_counter_runs_out_is_refused_and_dropped(
    broker: BrokerProcess, subscriber: ScriptedSubscriber, given: str
) -> None:
    event = wire_event("test.ttl.out", knativebrokerttl=given)
    headers, body = to_binary(event)
    response = requests.post(broker.ingress(), headers=headers, data=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["attribute"] == "knativebrokerttl"
    ids = [e["id"] for e in broker.get("/_shop/events?limit=1000")["events"]]
    assert event.id not in ids


def test_only_the_allowed_producer_headers_travel_to_the_subscriber(
    broker: BrokerProcess, subscriber: ScriptedSubscriber, classed: BrokerClass
) -> None:
    event = wire_event("test.headers")
    headers, body = to_binary(event)
    headers.update(
        {
            "X-Request-Id": "req-1",
            "Knative-Custom": "k-1",
            "X-B3-TraceId": "trace-1",
            "Retry-After": "3",
            "X-Custom": "dropped",
            "Authorization": "Bearer secret",
        }
    )
    requests.post(broker.ingress(), headers=headers, data=body, timeout=5).raise_for_status()
    received = delivered(subscriber, event.id).headers
    passed = {"x-request-id": "req-1", "knative-custom": "k-1", "x-b3-traceid": "trace-1"}
    passed["retry-after"] = "3"
    # A RabbitMQBroker's message carries the attributes only (RabbitMQBroker table).
    expected = {} if classed.rabbitmq else passed
    assert {name: received[name] for name in passed if name in received} == expected
    assert "x-custom" not in received
    assert "authorization" not in received
    assert received["prefer"] == "reply"
    assert received["kn-namespace"] == classed.namespace


def test_an_event_over_1_mib_is_refused_with_413(broker: BrokerProcess) -> None:
    headers, _ = to_binary(wire_event("test.big"))
    response = requests.post(
        broker.ingress(), headers=headers, data=b"x" * (1024 * 1024 + 1), timeout=5
    )
    assert response.status_code == 413
    assert response.headers["Allow"] == ALLOW
