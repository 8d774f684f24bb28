"""Redelivery: the original event goes back (through the broker, or to the subscriber that
failed it alone), and the answer is recorded."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kit.config import ConfigError
from services.deadletter.app import DeadletterConfig
from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from tests.unit.deadletter.conftest import build_app
from tests.unit.deadletter.test_dead_letters import dead_letter, deliver, listed
from wire.http_binding import WireEvent, event_from_json, parse_binary

TO_BROKER = {"to": "broker"}


def stored(client: FlaskClient, event: WireEvent) -> dict[str, Any]:
    assert deliver(client, event) == 202
    return next(item for item in listed(client) if item["event_id"] == event.id)


def received_events(broker: RecordingSink) -> list[WireEvent]:
    events = []
    for request in broker.accepted():
        headers = {name: value for name, value in request.headers.items()}
        events.append(parse_binary(headers.items(), headers.get("content-type"), request.body))
    return events


def test_redelivery_posts_the_original_event_with_the_same_id_to_the_broker(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    event = dead_letter(id="again", subject="o-1", source="/shop/order", partitionkey="k")
    item = stored(client, event)
    response = client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
    assert response.status_code == 200, response.get_json()
    (sent,) = received_events(broker)
    assert sent.id == "again" and sent.source == "/shop/order" and sent.type == "order.created"
    assert sent.get("subject") == "o-1" and sent.get("partitionkey") == "k"
    assert not [name for name in sent.attributes if name.startswith("knativeerror")]
    assert sent.data is not None and json.loads(sent.data) == {"order_id": "o-1"}
    assert broker.accepted()[0].path == "/shop/default"


def test_an_accepted_redelivery_is_recorded_with_when_and_the_answer(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="rec"))
    body = client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER).get_json()
    assert body["redelivery"]["status"] == 202 and body["redelivery"]["outcome"] == "accepted"
    assert body["dead_letter"]["redelivered_at"] is not None
    detail = client.get(f"/deadletters/{item['id']}").get_json()
    (attempt,) = detail["redeliveries"]
    assert attempt["status"] == 202 and attempt["url"] == broker.url
    assert attempt["attempted_at"] == detail["redelivered_at"]
    assert [i["event_id"] for i in listed(client, state="redelivered")] == ["rec"]
    assert listed(client, state="pending") == []


def test_a_redelivery_the_broker_refuses_is_an_error_and_not_marked_done(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="refused"))
    broker.status = 400
    response = client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
    assert response.status_code == 502
    body = response.get_json()
    assert "refused the redelivery with 400" in body["error"]
    assert body["redelivery"]["outcome"] == "refused"
    detail = client.get(f"/deadletters/{item['id']}").get_json()
    assert detail["redelivered_at"] is None
    assert [attempt["status"] for attempt in detail["redeliveries"]] == [400]
    assert [i["event_id"] for i in listed(client, state="pending")] == ["refused"]


def test_a_broker_that_does_not_answer_is_an_error_and_not_marked_done(database_url: str) -> None:
    app = build_app(database_url, f"http://127.0.0.1:{free_port()}/shop/default")
    try:
        client = app.test_client()
        item = stored(client, dead_letter(id="nobody"))
        response = client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
        assert response.status_code == 502
        assert "did not answer" in response.get_json()["error"]
        detail = client.get(f"/deadletters/{item['id']}").get_json()
        assert detail["redelivered_at"] is None
        assert [attempt["outcome"] for attempt in detail["redeliveries"]] == ["unreachable"]
    finally:
        app.extensions["shop.kit"].close()


def test_without_a_broker_redelivery_is_a_503_that_says_what_to_set(database_url: str) -> None:
    app = build_app(database_url, None)
    try:
        client = app.test_client()
        item = stored(client, dead_letter(id="nowhere"))
        response = client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
        assert response.status_code == 503
        assert "K_SINK" in response.get_json()["error"]
    finally:
        app.extensions["shop.kit"].close()


def test_binary_data_is_redelivered_byte_for_byte_with_its_content_type(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    raw = bytes(range(256))
    event = dead_letter(id="bytes")
    event = WireEvent(dict(event.attributes, datacontenttype="application/octet-stream"), raw)
    item = stored(client, event)
    assert client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER).status_code == 200
    (sent,) = received_events(broker)
    assert sent.data == raw and sent.get("datacontenttype") == "application/octet-stream"


def test_redelivery_outcomes_are_counted(app: Flask, broker: RecordingSink) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="counted"))
    client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
    broker.status = 503
    client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'shop_deadletter_redeliveries_total{outcome="accepted"} 1.0' in text
    assert 'shop_deadletter_redeliveries_total{outcome="refused"} 1.0' in text
    assert 'state="redelivered"} 1.0' in text


def test_the_same_dead_letter_can_be_redelivered_again(app: Flask, broker: RecordingSink) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="twice", error_body=base64.b64encode(b"x")))
    for _ in range(2):
        assert (
            client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER).status_code == 200
        )
    assert [event.id for event in received_events(broker)] == ["twice", "twice"]
    assert len(client.get(f"/deadletters/{item['id']}").get_json()["redeliveries"]) == 2


def test_a_redelivery_carries_the_token_of_oidc_token_file(
    database_url: str, broker: RecordingSink, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    app = build_app(database_url, broker.url, token_file=str(token_file))
    try:
        client = app.test_client()
        item = stored(client, dead_letter(id="signed"))
        token_file.write_text("first\n")
        assert (
            client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER).status_code == 200
        )
        token_file.write_text("renewed\n")
        assert (
            client.post(f"/deadletters/{item['id']}/redeliver", json=TO_BROKER).status_code == 200
        )
        tokens = [request.headers["authorization"] for request in broker.accepted()]
        assert tokens == ["Bearer first", "Bearer renewed"]
    finally:
        app.extensions["shop.kit"].close()


def test_a_redelivery_that_names_no_mode_goes_through_the_broker_unless_configured(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="plain"))
    body = client.post(f"/deadletters/{item['id']}/redeliver").get_json()
    assert body["redelivery"]["to"] == "broker"
    assert [request.path for request in broker.accepted()] == ["/shop/default"]


def test_the_default_mode_comes_from_redeliver_default_to() -> None:
    env = {"K_SINK": "http://127.0.0.1:1/shop/default"}
    assert DeadletterConfig.from_env(env).default_mode == "broker"
    configured = DeadletterConfig.from_env({**env, "REDELIVER_DEFAULT_TO": "subscriber"})
    assert configured.default_mode == "subscriber"
    with pytest.raises(ConfigError, match="REDELIVER_DEFAULT_TO must be one of subscriber, broker"):
        DeadletterConfig.from_env({**env, "REDELIVER_DEFAULT_TO": "everyone"})


def test_configured_for_shop_up_a_redelivery_asks_the_broker_for_the_failed_subscriber_alone(
    database_url: str, broker: RecordingSink
) -> None:
    app = build_app(database_url, broker.url, default_mode="subscriber")
    try:
        body = _redeliver_without_mode(app)
    finally:
        app.extensions["shop.kit"].close()
    assert body["redelivery"]["to"] == "subscriber"
    (request,) = broker.accepted()
    assert request.path == "/_shop/redeliver/shop/default"
    sent = json.loads(request.body)
    assert sent["destination"] == "http://p:1/pay"
    event = event_from_json(sent["event"])
    assert event.id == "one" and event.get("subject") == "o-2"
    assert not [name for name in event.attributes if name.startswith("knativeerror")]
    assert body["redelivery"]["url"] == broker.url.replace(
        "/shop/default", "/_shop/redeliver/shop/default"
    )


def _redeliver_without_mode(app: Flask) -> dict[str, Any]:
    client = app.test_client()
    item = stored(client, dead_letter(id="one", subject="o-2", destination="http://p:1/pay"))
    answer: dict[str, Any] = client.post(f"/deadletters/{item['id']}/redeliver").get_json()
    return answer


def test_a_redelivery_mode_other_than_subscriber_or_broker_is_refused_by_name(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="mode"))
    response = client.post(f"/deadletters/{item['id']}/redeliver", json={"to": "everyone"})
    assert response.status_code == 400 and response.get_json()["field"] == "to"
    assert broker.accepted() == []


def test_redelivery_by_filter_sends_the_pending_dead_letters_it_matches(
    app: Flask, broker: RecordingSink
) -> None:
    client = app.test_client()
    for n in range(3):
        stored(client, dead_letter(id=f"bulk-{n}", subject=f"s-{n}"))
    dry = client.post(
        "/deadletters/redeliver", json={"filter": "subject IN ('s-0', 's-2')", "dry_run": True}
    ).get_json()
    assert [item["event_id"] for item in dry["dead_letters"]] == ["bulk-0", "bulk-2"]
    assert broker.accepted() == []
    done = client.post(
        "/deadletters/redeliver", json={"filter": "subject IN ('s-0', 's-2')", **TO_BROKER}
    )
    assert done.status_code == 200, done.get_json()
    assert [e.id for e in received_events(broker)] == ["bulk-0", "bulk-2"]
    assert [i["event_id"] for i in listed(client, state="pending")] == ["bulk-1"]
    again = client.post("/deadletters/redeliver", json={"filter": "subject = 's-0'"}).get_json()
    assert again["count"] == 0  # redelivered ones are no longer pending


def test_redelivery_by_filter_refuses_a_bad_filter_by_name(
    app: Flask, broker: RecordingSink
) -> None:
    response = app.test_client().post("/deadletters/redeliver", json={"filter": "type ="})
    assert response.status_code == 400 and response.get_json()["field"] == "filter"
