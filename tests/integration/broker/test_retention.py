"""Retention in a real broker: what is pruned, what never is, the size bound, what it says."""

from __future__ import annotations

import sqlite3
from typing import Any

import requests

from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import always, by_path

STUCK = {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT30S"}


def journal(broker: BrokerProcess) -> dict[str, Any]:
    answer: dict[str, Any] = broker.get("/_shop/events?limit=1000")
    return answer


def journal_ids(broker: BrokerProcess) -> list[str]:
    return [event["id"] for event in journal(broker)["events"]]


def rows_of(broker: BrokerProcess, table: str) -> int:
    with sqlite3.connect(broker.database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_delivered_events_older_than_the_age_are_pruned_and_the_journal_says_so(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(202))
    broker = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": sub.url})], None, "--retention-age", "1"
    )
    for _ in range(3):
        send(broker, "test.old")
    wait_for(lambda: journal_ids(broker) == [], what="the delivered events to be pruned")
    answer = journal(broker)
    last = answer["last_seq"]
    assert answer["pruned_before_seq"] == last + 1
    assert answer["oldest_seq"] is None
    assert answer["retention"] == {"age_seconds": 1.0, "max_bytes": 256 * 2**20, "pruned_events": 3}
    assert {table: rows_of(broker, table) for table in ("events", "deliveries", "attempts")} == {
        "events": 0,
        "deliveries": 0,
        "attempts": 0,
    }
    gone = requests.get(f"{broker.url}/_shop/events/{last}", timeout=5)
    assert gone.status_code == 404
    assert gone.json()["error"] == (
        f"no event with seq {last}: it was pruned (retention: 1 s or 256 MiB)"
    )
    metrics = broker.metrics()
    assert metrics['shop_broker_events_pruned_total{reason="age"}'] == 3
    assert metrics["shop_broker_store_bytes"] > 0
    assert metrics["shop_broker_prune_step_seconds_count"] >= 1
    # A restart does not hand out the pruned seqs again (nor prune the next event at once).
    broker.stop()
    broker.args[broker.args.index("--retention-age") + 1] = "1h"
    broker.start()
    event = send(broker, "test.after-restart")
    assert [(e["id"], e["seq"]) for e in journal(broker)["events"]] == [(event.id, last + 1)]


def test_an_event_with_an_unfinished_delivery_is_never_pruned_whatever_its_age(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(by_path({"/stuck": always(503)}, always(202)))
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest("good", {"uri": f"{sub.url}/good"}),
            trigger_manifest(
                "stuck",
                {"uri": f"{sub.url}/stuck"},
                filter={"attributes": {"type": "test.stuck"}},
                delivery=STUCK,
            ),
        ],
        None,
        "--retention-age",
        "1",
    )
    stuck = send(broker, "test.stuck")
    wait_for_state(broker, stuck.id, "shop/good", "delivered")
    # Events after it, delivered and old enough, are pruned: the sweep passes the stuck one by.
    later = send(broker, "test.fine")
    wait_for(lambda: later.id not in journal_ids(broker), what=f"{later.id} to be pruned")
    assert journal_ids(broker) == [stuck.id]
    states = {d["trigger"]: d["state"] for d in journal(broker)["events"][0]["deliveries"]}
    assert states == {"shop/good": "delivered", "shop/stuck": "pending"}


def test_dead_lettered_and_locally_kept_events_are_pruned_too(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(by_path({"/sink": always(202)}, always(500)))
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest(
                "to-sink",
                {"uri": f"{sub.url}/a"},
                filter={"attributes": {"type": "test.sink"}},
                delivery={"retry": 0, "deadLetterSink": {"uri": f"{sub.url}/sink"}},
            ),
            trigger_manifest(
                "kept",
                {"uri": f"{sub.url}/b"},
                filter={"attributes": {"type": "test.kept"}},
                delivery={"retry": 0},
            ),
        ],
        None,
        "--retention-age",
        "2",
    )
    to_sink = send(broker, "test.sink")
    kept = send(broker, "test.kept")
    wait_for_state(broker, to_sink.id, "shop/to-sink", "dead_lettered")
    wait_for_state(broker, kept.id, "shop/kept", "kept")  # with its row in dead_letters
    wait_for(lambda: journal_ids(broker) == [], what="the dead-lettered events to be pruned")
    assert broker.get("/_shop/deadletters")["dead_letters"] == []
    assert rows_of(broker, "dead_letters") == 0
    assert broker.metrics()['shop_broker_events_pruned_total{reason="age"}'] == 2


def test_the_store_keeps_within_its_size_by_pruning_the_oldest_delivered_events(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory(always(202))
    max_bytes = 512 * 1024
    broker = start_broker(
        [broker_manifest(), trigger_manifest("t", {"uri": sub.url})],
        None,
        "--retention-bytes",
        "512K",
    )
    session = requests.Session()
    payload = "x" * 3000
    ids = []
    for number in range(600):  # about 2 MiB of data, four times the bound
        headers = {
            "ce-specversion": "1.0",
            "ce-id": f"big-{number}",
            "ce-source": "/tests",
            "ce-type": "test.big",
            "content-type": "text/plain",
        }
        response = session.post(broker.ingress(), headers=headers, data=payload, timeout=5)
        assert response.status_code == 202, response.text
        ids.append(f"big-{number}")
    wait_for_state(broker, ids[-1], "shop/t", "delivered")

    def live_bytes() -> int:
        with sqlite3.connect(broker.database) as connection:
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            free = connection.execute("PRAGMA freelist_count").fetchone()[0]
            size = connection.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    wait_for(lambda: live_bytes() <= max_bytes, what=f"the store to be within {max_bytes} bytes")
    kept = journal_ids(broker)
    assert kept == ids[-len(kept) :]  # the newest, none missing in between
    assert 50 < len(kept) < 200, len(kept)
    answer = journal(broker)
    assert answer["oldest_seq"] == answer["pruned_before_seq"]
    metrics = broker.metrics()
    assert metrics['shop_broker_events_pruned_total{reason="size"}'] == 600 - len(kept)
    assert metrics['shop_broker_events_pruned_total{reason="age"}'] == 0
