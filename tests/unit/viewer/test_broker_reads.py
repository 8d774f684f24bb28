"""The viewer's reads of a real local broker: an event's deliveries, a trace, passed through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from services.viewer.app import create_app
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.processes import free_port
from tests.support.scripted_subscriber import ScriptedSubscriber, always, fail_times
from tests.unit.viewer.conftest import viewer_config

RETRY_AT_ONCE = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.05S"}
GIVE_UP = {"retry": 0}


@pytest.fixture(scope="module")
def subscribers() -> Iterator[tuple[ScriptedSubscriber, ScriptedSubscriber]]:
    flaky, down = ScriptedSubscriber(fail_times(1, 503)), ScriptedSubscriber(always(500))
    yield flaky, down
    flaky.close()
    down.close()


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory,
    subscribers: tuple[ScriptedSubscriber, ScriptedSubscriber],
) -> Iterator[BrokerProcess]:
    flaky, down = subscribers
    process = BrokerProcess(
        tmp_path_factory.mktemp("broker"),
        [
            broker_manifest(),
            trigger_manifest("flaky", {"uri": flaky.url}, delivery=RETRY_AT_ONCE),
            trigger_manifest("down", {"uri": down.url}, delivery=GIVE_UP),
        ],
        {},
    ).start()
    yield process
    process.stop()


@pytest.fixture
def client(broker: BrokerProcess) -> FlaskClient:
    config = viewer_config(
        broker_url=broker.ingress(), journal_url=f"{broker.url}/_shop/events", journal_seconds=2
    )
    return create_app(config).test_client()


def test_an_events_deliveries_are_found_by_its_id_and_source(
    client: FlaskClient, broker: BrokerProcess
) -> None:
    event = send(broker, "test.watched", {"n": 1})
    wait_for_state(broker, event.id, "shop/flaky", "delivered")
    wait_for_state(broker, event.id, "shop/down", "kept")
    answer = client.get(f"/api/deliveries?id={event.id}&source={event.source}")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["id"] == event.id and body["data"] == {"n": 1}
    states = {item["trigger"]: item["state"] for item in body["deliveries"]}
    assert states == {"shop/flaky": "delivered", "shop/down": "kept"}
    flaky = [(a["attempt"], a["status"]) for a in body["attempts"] if a["trigger"] == "shop/flaky"]
    assert flaky == [(1, 503), (2, 200)]
    by_seq = client.get(f"/api/deliveries?seq={body['seq']}").get_json()
    assert by_seq == body


def test_an_event_the_journal_does_not_have_is_404_and_bad_arguments_400(
    client: FlaskClient,
) -> None:
    missing = client.get("/api/deliveries?id=nowhere&source=/tests")
    assert missing.status_code == 404
    assert missing.get_json()["error"].startswith("the broker's journal has no event 'nowhere'")
    assert client.get("/api/deliveries?seq=999999").status_code == 404  # the broker's own 404
    for query, field in (("", "id"), ("?id=x", "source"), ("?seq=-1", "seq"), ("?seq=0", "seq")):
        answer = client.get(f"/api/deliveries{query}")
        assert (answer.status_code, answer.get_json()["field"]) == (400, field), query


def test_a_trace_is_the_brokers_answer_and_a_bad_trace_id_is_400(
    client: FlaskClient, broker: BrokerProcess
) -> None:
    trace_id = "ab" * 16
    direct = requests.get(f"{broker.url}/_shop/traces/{trace_id}", timeout=5)
    unknown = client.get(f"/api/traces/{trace_id}")
    # 404 for a trace it has no span of (a broker without traces answers 405 or 404 too).
    assert (unknown.status_code, unknown.data) == (direct.status_code, direct.content)
    assert unknown.status_code in (404, 405) and "error" in unknown.get_json()
    for bad in ("ABABABABABABABABABABABABABABABAB", "abc", "x" * 32):
        answer = client.get(f"/api/traces/{bad}")
        assert (answer.status_code, answer.get_json()["field"]) == (400, "trace_id"), bad


def test_without_a_journal_the_reads_say_what_to_set(tmp_path: Path) -> None:
    client = create_app(viewer_config()).test_client()
    for path in ("/api/deliveries?seq=1", f"/api/traces/{'0f' * 16}"):
        answer = client.get(path)
        assert answer.status_code == 503 and "JOURNAL_URL" in answer.get_json()["error"]


def test_a_broker_that_does_not_answer_is_502() -> None:
    journal = f"http://127.0.0.1:{free_port()}/_shop/events"
    client = create_app(viewer_config(journal_url=journal, journal_seconds=0.2)).test_client()
    answer = client.get(f"/api/traces/{'0f' * 16}")
    assert answer.status_code == 502 and "did not answer" in answer.get_json()["error"]
