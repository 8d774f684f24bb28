"""What the broker shows: /metrics, /healthz, the journal (HTTP and file), logs, topology."""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from shop.broker.journal import Journal
from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import (
    REPO_ROOT,
    BrokerProcess,
    broker_manifest,
    service_manifest,
    trigger_manifest,
)
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import ScriptedSubscriber, always, by_path

LOG_KEYS = {"event_id", "type", "source", "trigger", "outcome", "attempt", "status", "duration_ms"}


def two_triggers(start_broker: StartBroker, sub: ScriptedSubscriber) -> BrokerProcess:
    """`good` takes everything; `bad` always fails (1 retry, no sink: kept locally)."""
    return start_broker(
        [
            broker_manifest(),
            trigger_manifest("good", {"uri": f"{sub.url}/good"}),
            trigger_manifest("bad", {"uri": f"{sub.url}/bad"}, delivery={"retry": 1}),
        ]
    )


def test_metrics_count_per_trigger_and_the_backlog_drains(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(by_path({"/bad": always(503)}, always(202)))
    broker = two_triggers(start_broker, sub)
    events = [send(broker, "test.metrics") for _ in range(3)]
    for event in events:
        wait_for_state(broker, event.id, "shop/bad", "kept")
        wait_for_state(broker, event.id, "shop/good", "delivered")
    metrics = broker.metrics()
    assert metrics['shop_broker_ingress_requests_total{broker="shop/default",status="202"}'] == 3
    assert metrics['shop_broker_events_accepted_total{trigger="shop/good"}'] == 3
    assert metrics['shop_broker_events_accepted_total{trigger="shop/bad"}'] == 3
    assert metrics['shop_broker_events_delivered_total{trigger="shop/good"}'] == 3
    assert metrics.get('shop_broker_events_delivered_total{trigger="shop/bad"}', 0) == 0
    assert metrics['shop_broker_delivery_retries_total{trigger="shop/bad"}'] == 3
    assert metrics['shop_broker_events_dead_lettered_total{sink="local",trigger="shop/bad"}'] == 3
    assert metrics['shop_broker_delivery_latency_seconds_count{trigger="shop/good"}'] == 3
    assert metrics['shop_broker_delivery_attempt_seconds_count{trigger="shop/bad"}'] == 6
    assert metrics['shop_broker_backlog{trigger="shop/good"}'] == 0
    assert metrics['shop_broker_backlog{trigger="shop/bad"}'] == 0


def test_the_backlog_counts_unfinished_deliveries(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(503))
    delivery = {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT10S"}
    broker = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": sub.url}, delivery=delivery)]
    )
    send(broker, "test.stuck")
    send(broker, "test.stuck")
    wait_for(
        lambda: broker.metrics()['shop_broker_backlog{trigger="shop/t"}'] == 2,
        what="a backlog of 2",
    )


def test_one_json_log_line_per_delivery_outcome(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(by_path({"/bad": always(503)}, always(202)))
    broker = two_triggers(start_broker, sub)
    event = send(broker, "test.logs")
    wait_for_state(broker, event.id, "shop/bad", "kept")

    def outcomes() -> list[dict[str, object]] | None:
        lines = [r for r in broker.log_records() if r.get("event_id") == event.id]
        return lines if len(lines) == 3 else None

    lines = wait_for(outcomes, what="3 outcome lines")
    assert all(line.keys() >= LOG_KEYS for line in lines), lines
    assert sorted((line["trigger"], line["outcome"], line["attempt"]) for line in lines) == [
        ("shop/bad", "kept", 2),
        ("shop/bad", "retry", 1),
        ("shop/good", "delivered", 1),
    ]
    assert {line["status"] for line in lines} == {202, 503}


def test_the_journal_over_http_pages_events_and_shows_attempts(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(by_path({"/bad": always(503)}, always(202)))
    broker = two_triggers(start_broker, sub)
    sent = [send(broker, "test.journal", {"n": n}) for n in range(5)]
    wait_for_state(broker, sent[-1].id, "shop/bad", "kept")
    first = broker.get("/_shop/events?limit=2")
    assert [e["id"] for e in first["events"]] == [sent[0].id, sent[1].id]
    rest = broker.get(f"/_shop/events?after={first['next_after']}&limit=100")
    assert [e["id"] for e in rest["events"]] == [e.id for e in sent[2:]]
    seq = first["events"][0]["seq"]
    detail = broker.get(f"/_shop/events/{seq}")
    assert detail["data"] == {"n": 0}
    assert detail["attributes"]["type"] == "test.journal"
    assert {(a["trigger"], a["outcome"]) for a in detail["attempts"]} >= {
        ("shop/good", "delivered")
    }
    assert requests.get(f"{broker.url}/_shop/events/99999", timeout=5).status_code == 404
    assert requests.get(f"{broker.url}/_shop/events?after=x", timeout=5).status_code == 400


def test_another_process_can_read_the_journal_from_the_database_file(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory()
    broker = start_broker([broker_manifest(), trigger_manifest("t", {"uri": sub.url})])
    event = send(broker, "test.file")
    wait_for_state(broker, event.id, "shop/t", "delivered")
    journal = Journal(broker.database)
    (entry,) = journal.events()
    assert entry["id"] == event.id
    assert entry["deliveries"] == [{"trigger": "shop/t", "state": "delivered", "attempts": 1}]
    assert journal.event(entry["seq"])["attempts"][0]["status"] == 202  # type: ignore[index]


def test_topology_and_health_endpoints(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory()
    trigger = trigger_manifest(
        "t",
        {"uri": sub.url},
        filters=[{"exact": {"type": "x"}}],
        delivery={"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT1S"},
    )
    broker = start_broker([broker_manifest(), trigger])
    assert broker.get("/healthz") == {"status": "ok"}
    topology = broker.get("/_shop/topology")
    assert topology["brokers"] == [
        {"namespace": "shop", "name": "default", "url": broker.ingress(), "triggers": ["t"]}
    ]
    (described,) = topology["triggers"]
    assert described["subscriber"] == {"uri": sub.url}
    assert described["filters"] == [{"exact": {"type": "x"}}]
    assert described["delivery"]["retry"] == 2
    assert described["delivery"]["backoffDelaySeconds"] == 1.0


def test_a_subscriber_without_a_local_endpoint_stops_startup_with_a_message(
    tmp_path: Path,
) -> None:
    broker = BrokerProcess(
        tmp_path,
        [broker_manifest(), service_manifest("order"), trigger_manifest("t", "order")],
        {},
    )
    finished = subprocess.run(
        broker.args, capture_output=True, text=True, timeout=30, check=False, cwd=REPO_ROOT
    )
    assert finished.returncode == 2
    assert "Trigger shop/t: spec.subscriber.ref: Service 'order' has no local endpoint" in (
        finished.stderr
    )
