"""Redelivery: the original event goes back to the broker, and its answer is recorded."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from tests.unit.deadletter.conftest import build_app
from tests.unit.deadletter.test_dead_letters import dead_letter, deliver, listed
from wire.http_binding import WireEvent, parse_binary


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
    response = client.post(f"/deadletters/{item['id']}/redeliver")
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
    body = client.post(f"/deadletters/{item['id']}/redeliver").get_json()
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
    response = client.post(f"/deadletters/{item['id']}/redeliver")
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
        response = client.post(f"/deadletters/{item['id']}/redeliver")
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
        response = client.post(f"/deadletters/{item['id']}/redeliver")
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
    assert client.post(f"/deadletters/{item['id']}/redeliver").status_code == 200
    (sent,) = received_events(broker)
    assert sent.data == raw and sent.get("datacontenttype") == "application/octet-stream"


def test_redelivery_outcomes_are_counted(app: Flask, broker: RecordingSink) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="counted"))
    client.post(f"/deadletters/{item['id']}/redeliver")
    broker.status = 503
    client.post(f"/deadletters/{item['id']}/redeliver")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'shop_deadletter_redeliveries_total{outcome="accepted"} 1.0' in text
    assert 'shop_deadletter_redeliveries_total{outcome="refused"} 1.0' in text
    assert 'state="redelivered"} 1.0' in text


def test_the_same_dead_letter_can_be_redelivered_again(app: Flask, broker: RecordingSink) -> None:
    client = app.test_client()
    item = stored(client, dead_letter(id="twice", error_body=base64.b64encode(b"x")))
    for _ in range(2):
        assert client.post(f"/deadletters/{item['id']}/redeliver").status_code == 200
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
        assert client.post(f"/deadletters/{item['id']}/redeliver").status_code == 200
        token_file.write_text("renewed\n")
        assert client.post(f"/deadletters/{item['id']}/redeliver").status_code == 200
        tokens = [request.headers["authorization"] for request in broker.accepted()]
        assert tokens == ["Bearer first", "Bearer renewed"]
    finally:
        app.extensions["shop.kit"].close()
