"""Replay (`POST /_shop/replay`) and a dead letter back to its Trigger (`/_shop/redeliver/...`).

Each test runs on both broker classes: the store's brokers and a RabbitMQBroker. Triggers `a`
and `b` take `test.replay`, `c` takes `test.other`; each has its own subscriber.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from shop.cli import main
from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send
from tests.support.broker_classes import BrokerClass
from tests.support.broker_process import BrokerProcess
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import ScriptedSubscriber
from wire.http_binding import WireEvent, to_structured_document

REPLAYED = "test.replay"
OTHER = "test.other"


@dataclass
class Setup:
    broker: BrokerProcess
    subscribers: dict[str, ScriptedSubscriber]
    events: list[WireEvent]
    classes: BrokerClass

    def seq(self, event: WireEvent) -> int:
        return int(next(e["seq"] for e in self.journal() if e["id"] == event.id))

    def journal(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.broker.get("/_shop/events?limit=1000")["events"]
        return events

    def ids_at(self, name: str) -> list[str]:
        return [r.event().id for r in self.subscribers[name].received()]

    def replay(self, status: int = 200, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.broker.url}/_shop/replay", json=body, timeout=30)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        return answer


def _start(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: BrokerClass,
    *args: str,
) -> Setup:
    subscribers = {name: subscriber_factory() for name in "abc"}
    filters = {"a": REPLAYED, "b": REPLAYED, "c": OTHER}
    broker = start_broker(
        [
            broker_class.broker(),
            *(
                broker_class.trigger(
                    name,
                    {"uri": subscribers[name].url},
                    filter={"attributes": {"type": filters[name]}},
                )
                for name in "abc"
            ),
        ],
        None,
        *args,
    )
    return Setup(broker, subscribers, [], broker_class)


def _send_four(setup: Setup) -> None:
    """Four `test.replay` events (subjects s1..s4) and one `test.other`, all delivered."""
    for n in range(1, 5):
        setup.events.append(send(setup.broker, REPLAYED, {"n": n}, subject=f"s{n}"))
    setup.events.append(send(setup.broker, OTHER, {"n": 5}, subject="s5"))
    setup.subscribers["a"].wait_for(4)
    setup.subscribers["b"].wait_for(4)
    setup.subscribers["c"].wait_for(1)


def _wait_ids(subscriber: ScriptedSubscriber, count: int) -> list[str]:
    return [r.event().id for r in subscriber.wait_for(count)]


def test_a_range_of_seqs_goes_again_to_every_trigger_that_matches_with_the_same_ids(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    _send_four(setup)
    e1, e2, e3, _, e5 = setup.events
    answer = setup.replay(after=setup.seq(e1), until=setup.seq(e3))
    assert answer["count"] == answer["queued"] == 2
    assert [item["id"] for item in answer["events"]] == [e2.id, e3.id]
    assert answer["events"][0]["triggers"] == [broker_class.key("a"), broker_class.key("b")]
    for name in "ab":
        assert sorted(_wait_ids(setup.subscribers[name], 6)[4:]) == sorted([e2.id, e3.id])
    replayed = setup.subscribers["a"].received()[4].event()
    assert replayed.attributes["subject"] in ("s2", "s3")
    assert replayed.attributes["source"] == "/tests"
    # The same event accepted anew: a new journal entry with a new seq and arrival time.
    entries = [e for e in setup.journal() if e["id"] == e2.id]
    assert len(entries) == 2 and entries[0]["seq"] < entries[1]["seq"]
    assert answer["events"][0]["new_seq"] == entries[1]["seq"]
    arrival = "knativearrivaltime"
    assert entries[0]["attributes"][arrival] != entries[1]["attributes"][arrival]
    assert setup.ids_at("c") == [e5.id]


def test_until_a_time_takes_the_events_that_arrived_by_then(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    first = send(setup.broker, REPLAYED, {"n": 1})
    between = datetime.now(UTC).isoformat()  # after the first's 202, before the second is sent
    send(setup.broker, REPLAYED, {"n": 2})
    setup.subscribers["a"].wait_for(2)
    answer = setup.replay(until=between)
    assert [item["id"] for item in answer["events"]] == [first.id]
    assert _wait_ids(setup.subscribers["a"], 3)[2] == first.id


def test_a_filter_takes_only_the_events_it_matches(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    _send_four(setup)
    third = setup.events[2]
    answer = setup.replay(filter="subject = 's3'")
    assert [item["id"] for item in answer["events"]] == [third.id]
    assert _wait_ids(setup.subscribers["b"], 5)[4] == third.id


def test_a_replay_to_one_trigger_reaches_no_other(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    _send_four(setup)
    e1, _, _, e4, _ = setup.events
    answer = setup.replay(trigger="b", filter="subject IN ('s1', 's4')")
    assert {tuple(item["triggers"]) for item in answer["events"]} == {(broker_class.key("b"),)}
    assert sorted(_wait_ids(setup.subscribers["b"], 6)[4:]) == sorted([e1.id, e4.id])
    # The new entries have a delivery to `b` alone: nothing went to `a`, nor will.
    new = [e for e in setup.journal() if e["seq"] in {i["new_seq"] for i in answer["events"]}]
    assert len(new) == 2
    for entry in new:
        assert [d["trigger"] for d in entry["deliveries"]] == [broker_class.key("b")]
    assert len(setup.subscribers["a"].received()) == 4


def test_a_dry_run_lists_what_would_go_and_sends_nothing(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    _send_four(setup)
    before = setup.broker.get("/_shop/events?limit=1")["last_seq"]
    answer = setup.replay(dry_run=True)
    assert answer["dry_run"] is True and answer["count"] == 5
    first = answer["events"][0]
    assert first == {
        "seq": setup.seq(setup.events[0]),
        "broker": broker_class.key("default"),
        "id": setup.events[0].id,
        "type": REPLAYED,
        "subject": "s1",
        "triggers": [broker_class.key("a"), broker_class.key("b")],
    }
    assert answer["events"][4]["triggers"] == [broker_class.key("c")]
    assert answer["last_seq"] == before
    assert setup.broker.get("/_shop/events?limit=1")["last_seq"] == before


def test_a_range_over_the_limit_is_refused_naming_the_limit(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class, "--max-replay", "3")
    _send_four(setup)
    before = setup.broker.get("/_shop/events?limit=1")["last_seq"]
    refused = setup.replay(400)
    assert refused["limit"] == 3 and refused["field"] == "until"
    assert "more than 3 events" in refused["error"]
    assert setup.replay(filter="subject IN ('s1', 's2', 's3')")["queued"] == 3
    assert setup.broker.get("/_shop/events?limit=1")["last_seq"] == before + 3


def test_bad_replay_fields_are_refused_by_name(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"after": -1}, "after"),
        ({"until": "yesterday"}, "until"),
        ({"until": "2026-01-01T00:00:00"}, "until"),  # no offset
        ({"filter": "type ="}, "filter"),
        ({"trigger": "nope"}, "trigger"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"every": True}, "every"),
    ]
    for body, field in cases:
        assert setup.replay(400, **body)["field"] == field, body


def _redeliver(setup: Setup, destination: str, event: WireEvent, status: int = 202) -> Any:
    response = requests.post(
        f"{setup.broker.url}/_shop/redeliver/{setup.classes.key('default')}",
        json={"destination": destination, "event": to_structured_document(event)},
        timeout=10,
    )
    assert response.status_code == status, response.text
    return response.json()


def test_a_dead_letter_goes_back_to_the_failed_subscriber_alone(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    _send_four(setup)
    event = setup.events[1]
    answer = _redeliver(setup, setup.subscribers["b"].url, event)
    assert answer["id"] == event.id and answer["triggers"] == [broker_class.key("b")]
    assert _wait_ids(setup.subscribers["b"], 5)[4] == event.id
    entry = wait_for(
        lambda: next((e for e in setup.journal() if e["seq"] == answer["seq"]), None),
        what="the redelivered event in the journal",
    )
    assert [d["trigger"] for d in entry["deliveries"]] == [broker_class.key("b")]
    assert len(setup.subscribers["a"].received()) == 4


def test_a_dead_letter_of_a_url_no_trigger_delivers_to_is_refused(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    event = send(setup.broker, REPLAYED, {"n": 1})
    refused = _redeliver(setup, setup.broker.ingress(), event, status=404)
    assert refused["field"] == "destination" and "to=broker" in refused["error"]


def test_shop_replay_lists_asks_above_ten_and_sends_what_it_listed(
    start_broker: StartBroker,
    subscriber_factory: NewSubscriber,
    broker_class: BrokerClass,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = _start(start_broker, subscriber_factory, broker_class)
    events = [send(setup.broker, REPLAYED, {"n": n}, subject=f"s{n}") for n in range(12)]
    setup.subscribers["a"].wait_for(12)
    broker = ["--broker", setup.broker.url]
    assert main(["replay", "--dry-run", "--filter", "subject = 's3'", *broker]) == 0
    listed = capsys.readouterr().out
    assert events[3].id in listed and "1 events would go" in listed
    assert f"{broker_class.key('a')}, {broker_class.key('b')}" in listed
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # not a terminal: needs --yes
    assert main(["replay", "--trigger", "a", *broker]) == 1
    assert "12 events would be sent: pass --yes" in capsys.readouterr().out
    assert main(["replay", "--trigger", "a", "--yes", *broker]) == 0
    assert "12 of 12 events sent again" in capsys.readouterr().out
    assert sorted(_wait_ids(setup.subscribers["a"], 24)[12:]) == sorted(e.id for e in events)
    assert len(setup.subscribers["b"].received()) == 12


def test_a_dead_letter_goes_to_the_trigger_whose_filter_takes_it_among_those_sharing_its_url(
    start_broker: StartBroker, subscriber_factory: NewSubscriber, broker_class: BrokerClass
) -> None:
    shared = subscriber_factory()
    broker = start_broker(
        [
            broker_class.broker(),
            *(
                broker_class.trigger(
                    name, {"uri": shared.url}, filter={"attributes": {"type": event_type}}
                )
                for name, event_type in (("x", REPLAYED), ("y", OTHER))
            ),
        ]
    )
    setup = Setup(broker, {"shared": shared}, [], broker_class)
    event = send(broker, REPLAYED, {"n": 1})
    shared.wait_for(1)
    answer = _redeliver(setup, shared.url, event)
    assert answer["triggers"] == [broker_class.key("x")]
    assert _wait_ids(shared, 2) == [event.id, event.id]
