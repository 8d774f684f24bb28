"""Delivery to subscribers: wire format, headers, filters, destinations, concurrency.

Each test runs on both broker classes (`broker_class`); where a RabbitMQBroker rightly differs
(docs/broker.md, "Broker classes: RabbitMQBroker", the table of differences) the test says so.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pytest

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import post, send, wait_for_state
from tests.support.broker_classes import BrokerClass
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import always, sleep


def test_events_reach_subscribers_in_binary_mode_with_reply_preference(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory()
    broker = start_broker(
        [broker_class.broker(), broker_class.service("sub"), broker_class.trigger("t", "sub")],
        {"sub": sub.url},
    )
    event = send(broker, "test.binary", {"order": 1}, subject="o-1")
    (received,) = sub.wait_for(1)
    assert received.headers["ce-id"] == event.id
    assert received.headers["ce-specversion"] == "1.0"
    assert received.headers["ce-subject"] == "o-1"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["prefer"] == "reply"
    assert received.headers["kn-namespace"] == broker_class.namespace
    assert json.loads(received.body) == {"order": 1}


def test_format_json_delivers_structured_events(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub = subscriber_factory()
    trigger = broker_class.trigger("t", "sub", delivery={"format": "json"})
    broker = start_broker(
        [broker_class.broker(), broker_class.service("sub"), trigger], {"sub": sub.url}
    )
    event = post(broker, wire_event("test.structured", {"order": 2}, flag=True), structured=True)
    (received,) = sub.wait_for(1)
    if broker_class.rabbitmq:
        # docs/broker.md, RabbitMQBroker table: `delivery.format` is not read, binary always.
        assert received.headers["content-type"] == "application/json"
        assert received.headers["ce-id"] == event.id and received.headers["ce-flag"] == "true"
        assert json.loads(received.body) == {"order": 2}
        return
    assert received.headers["content-type"] == "application/cloudevents+json"
    assert not any(name.startswith("ce-") for name in received.headers)
    document = json.loads(received.body)
    assert document["id"] == event.id
    assert document["data"] == {"order": 2}
    assert document["flag"] is True
    assert "knativebrokerttl" not in document
    assert document["knativearrivaltime"].endswith("Z")


def test_a_ref_resolves_through_the_endpoints_file_and_a_uri_is_appended(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    by_ref, by_uri = subscriber_factory(), subscriber_factory()
    ref_with_path = {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "sub"},
        "uri": "/events/in",
    }
    broker = start_broker(
        [
            broker_class.broker(),
            broker_class.service("sub"),
            broker_class.trigger("ref", ref_with_path),
            broker_class.trigger("uri", {"uri": f"{by_uri.url}/hook?x=1"}),
        ],
        {"sub": by_ref.url},
    )
    send(broker, "test.route")
    assert by_ref.wait_for(1)[0].path == "/events/in"
    assert by_uri.wait_for(1)[0].path == "/hook?x=1"


RABBITMQ_WORKERS = (
    "a RabbitMQBroker's deliveries in flight are its Trigger's parallelism annotation, not "
    "containerConcurrency or --concurrency (test_rabbitmq.py: parallelism 1 and 4)"
)

FILTER_CASES: list[tuple[dict[str, Any], dict[str, str], bool]] = [
    # (trigger spec, event extensions, delivered?)
    ({"filter": {"attributes": {"region": "eu"}}}, {"region": "eu"}, True),
    ({"filter": {"attributes": {"region": "eu"}}}, {"region": "us"}, False),
    ({"filter": {"attributes": {"region": "eu"}}}, {}, False),
    ({"filter": {"attributes": {"region": ""}}}, {"region": "any"}, True),
    ({"filter": {"attributes": {"region": ""}}}, {}, False),
    ({"filters": [{"exact": {"region": "eu"}}]}, {"region": "eu"}, True),
    ({"filters": [{"exact": {"region": "eu"}}]}, {}, False),
    ({"filters": [{"prefix": {"region": "eu-"}}]}, {"region": "eu-west"}, True),
    ({"filters": [{"prefix": {"region": "eu-"}}]}, {"region": "us-east"}, False),
    ({"filters": [{"suffix": {"region": "-west"}}]}, {"region": "eu-west"}, True),
    ({"filters": [{"suffix": {"region": "-west"}}]}, {}, False),
    ({"filters": [{"not": {"exact": {"region": "eu"}}}]}, {"region": "us"}, True),
    ({"filters": [{"not": {"exact": {"region": "eu"}}}]}, {"region": "eu"}, False),
    (
        {"filters": [{"all": [{"exact": {"region": "eu"}}, {"prefix": {"tier": "gold"}}]}]},
        {"region": "eu", "tier": "gold-plus"},
        True,
    ),
    (
        {"filters": [{"all": [{"exact": {"region": "eu"}}, {"prefix": {"tier": "gold"}}]}]},
        {"region": "eu"},
        False,
    ),
    (
        {"filters": [{"any": [{"exact": {"region": "eu"}}, {"exact": {"region": "us"}}]}]},
        {"region": "us"},
        True,
    ),
    (
        {"filters": [{"any": [{"exact": {"region": "eu"}}, {"exact": {"region": "us"}}]}]},
        {"region": "ap"},
        False,
    ),
    (
        {"filters": [{"cesql": "region = 'eu' AND priority > 3"}]},
        {"region": "eu", "priority": "5"},
        True,
    ),
    (
        {"filters": [{"cesql": "region = 'eu' AND priority > 3"}]},
        {"region": "eu", "priority": "1"},
        False,
    ),
    ({"filters": [{"cesql": "missingext = 'x'"}]}, {}, False),
    ({"filters": [{"cesql": "EXISTS region"}]}, {}, False),
    ({"filters": [{"cesql": "NOT EXISTS region"}]}, {}, True),
    (
        {"filter": {"attributes": {"region": "us"}}, "filters": [{"exact": {"region": "eu"}}]},
        {"region": "eu"},
        True,
    ),
]


def delivered_by_rabbitmq(spec: dict[str, Any], extensions: dict[str, str]) -> bool:
    """Whether a RabbitMQBroker delivers: docs/broker.md, RabbitMQBroker table: `spec.filters`
    is ignored and `spec.filter.attributes` is the headers binding, where an empty value
    matches only an empty value (not "any value", as the MT broker reads it)."""
    attributes = spec.get("filter", {}).get("attributes", {})
    return all(extensions.get(key) == value for key, value in attributes.items())


def test_filter_dialects_on_extensions_and_missing_attributes(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    """One trigger per case, each to its own path; every case's event goes to every trigger."""
    cases = [
        (spec, extensions, delivered_by_rabbitmq(spec, extensions) if broker_class.rabbitmq else d)
        for spec, extensions, d in FILTER_CASES
    ]
    sub = subscriber_factory()
    triggers = [
        broker_class.trigger(f"case-{n}", {"uri": f"{sub.url}/case-{n}"}, **spec)
        for n, (spec, _, _) in enumerate(cases)
    ]
    broker = start_broker([broker_class.broker(), *triggers])
    sent = [send(broker, "test.filter", **extensions).id for _, extensions, _ in cases]

    def arrived(path: str, event_id: str) -> bool:
        return event_id in sub.ids(path)

    def holds(path: str, event_ids: list[str]) -> bool:
        return sorted(sub.ids(path)) == event_ids

    # The journal says which triggers each event was accepted for (filters run at the ingress).
    matched = {
        e["id"]: {d["trigger"] for d in e["deliveries"]}
        for e in broker.get("/_shop/events?limit=1000")["events"]
    }
    for n, (spec, extensions, delivered) in enumerate(cases):
        assert (broker_class.key(f"case-{n}") in matched[sent[n]]) is delivered, (
            n,
            spec,
            extensions,
        )
    for n, (_, _, delivered) in enumerate(cases):
        if delivered:
            wait_for(partial(arrived, f"/case-{n}", sent[n]), what=f"case {n} delivered")
    if broker_class.rabbitmq:
        # The exchange routes to a queue exactly what its binding matches, of every case's
        # event; nothing counts as filtered.
        for n, (spec, _, _) in enumerate(cases):
            wanted = sorted(
                sent[m] for m, (_, ext, _) in enumerate(cases) if delivered_by_rabbitmq(spec, ext)
            )
            wait_for(partial(holds, f"/case-{n}", wanted), what=f"case {n}'s events")
        return
    metrics = broker.metrics()
    filtered = f'shop_broker_events_filtered_total{{trigger="{broker_class.key("case-1")}"}}'
    assert metrics[filtered] >= 1


def test_a_filtered_out_event_is_acknowledged_without_retries_or_dead_letters(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    sub, dead = subscriber_factory(), subscriber_factory()
    trigger = broker_class.trigger(
        "only-a",
        {"uri": sub.url},
        filter={"attributes": {"type": "test.a"}},
        delivery={"retry": 3, "deadLetterSink": {"uri": dead.url}},
    )
    broker = start_broker([broker_class.broker(), trigger])
    skipped = send(broker, "test.b")
    taken = send(broker, "test.a")
    sub.wait_for(1)
    entry = broker.get("/_shop/events?limit=10")["events"]
    deliveries = {e["id"]: e["deliveries"] for e in entry}
    assert deliveries[skipped.id] == []
    assert sub.ids() == [taken.id]
    assert dead.received() == []
    assert broker.get("/_shop/deadletters")["dead_letters"] == []


def test_container_concurrency_bounds_parallel_deliveries_to_one_subscriber(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    if broker_class.rabbitmq:
        pytest.skip(RABBITMQ_WORKERS)
    sub = subscriber_factory(sleep(0.2, 202))
    broker = start_broker(
        [
            broker_class.broker(),
            broker_class.service("sub", containerConcurrency=3),
            broker_class.trigger("t", "sub"),
        ],
        {"sub": sub.url},
    )
    for n in range(12):
        send(broker, "test.parallel", {"n": n})
    sub.wait_for(12, timeout=10)
    assert sub.max_in_flight == 3


def test_deliveries_run_in_parallel_up_to_the_broker_concurrency(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    if broker_class.rabbitmq:
        pytest.skip(RABBITMQ_WORKERS)
    sub = subscriber_factory(sleep(0.3, 202))
    broker = start_broker(
        [broker_class.broker(), broker_class.trigger("t", {"uri": sub.url})],
        {},
        "--concurrency",
        "5",
    )
    started = time.monotonic()
    for n in range(10):
        send(broker, "test.parallel", {"n": n})
    sub.wait_for(10, timeout=10)
    assert sub.max_in_flight == 5
    assert time.monotonic() - started < 2.5  # 10 x 0.3 s one at a time would be 3 s


@pytest.mark.parametrize("status", [200, 202, 204])
def test_any_2xx_with_an_empty_body_is_a_delivery(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: BrokerClass,
    status: int,
) -> None:
    sub = subscriber_factory(always(status))
    trigger = broker_class.trigger("t", {"uri": sub.url}, delivery={"retry": 2})
    broker = start_broker([broker_class.broker(), trigger])
    event = send(broker, "test.ok")
    sub.wait_for(1)
    document = wait_for_state(broker, event.id, broker_class.key("t"), "delivered")
    assert [a["status"] for a in document["attempts"]] == [status]
