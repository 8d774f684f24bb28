"""The viewer passes the dead-letter API through to the deadletter service (cluster-local)."""

from __future__ import annotations

import base64

import requests
from flask import Flask

from services.viewer.app import create_app
from tests.support.events import wire_event
from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import viewer_config
from wire.http_binding import to_binary


def dead_letter_into(deadletter_url: str, event_id: str) -> None:
    event = wire_event(
        "order.created",
        {"order_id": "o-1"},
        id=event_id,
        subject="o-1",
        knativeerrordest="http://payment/",
        knativeerrorcode="503",
        knativeerrordata=base64.b64encode(b"down").decode(),
    )
    headers, body = to_binary(event)
    assert requests.post(deadletter_url, headers=headers, data=body, timeout=5).status_code == 202


def viewer_for(deadletter_url: str | None) -> Flask:
    return create_app(viewer_config(deadletter_url=deadletter_url))


def test_listing_showing_redelivering_and_discarding_go_through(
    deadletter_service: str, broker: RecordingSink
) -> None:
    dead_letter_into(deadletter_service, "dl-1")
    client = viewer_for(deadletter_service).test_client()
    listed = client.get("/api/deadletters?type=order.created").get_json()
    (item,) = listed["dead_letters"]
    assert item["event_id"] == "dl-1" and item["error_data"] == "down"
    detail = client.get(f"/api/deadletters/{item['id']}").get_json()
    assert detail["event"]["id"] == "dl-1"
    assert client.get("/api/deadletters/summary").get_json()["pending"] == 1
    redelivered = client.post(f"/api/deadletters/{item['id']}/redeliver", json={"to": "broker"})
    assert redelivered.status_code == 200
    assert [request.headers["ce-id"] for request in broker.accepted()] == ["dl-1"]
    assert client.delete(f"/api/deadletters/{item['id']}").status_code == 204
    assert client.get(f"/api/deadletters/{item['id']}").status_code == 404


def test_a_redelivery_without_a_body_or_by_filter_goes_through_as_the_service_takes_it(
    deadletter_service: str, broker: RecordingSink
) -> None:
    dead_letter_into(deadletter_service, "dl-3")
    client = viewer_for(deadletter_service).test_client()
    (item,) = client.get("/api/deadletters").get_json()["dead_letters"]
    answer = client.post(f"/api/deadletters/{item['id']}/redeliver").get_json()
    assert answer["redelivery"]["to"] == "broker"
    assert [request.path for request in broker.accepted()] == ["/shop/default"]
    bulk = client.post(
        "/api/deadletters/redeliver", json={"filter": "id = 'dl-3'", "dry_run": True}
    )
    assert bulk.status_code == 200 and bulk.get_json()["count"] == 0  # redelivered already
    refused = client.post("/api/deadletters/redeliver", json={"to": "broker"})
    assert refused.status_code == 400 and "filter" in refused.get_json()["error"]


def test_the_deadletter_services_errors_come_through_unchanged(
    deadletter_service: str, broker: RecordingSink
) -> None:
    dead_letter_into(deadletter_service, "dl-2")
    client = viewer_for(deadletter_service).test_client()
    (item,) = client.get("/api/deadletters").get_json()["dead_letters"]
    broker.status = 400
    response = client.post(f"/api/deadletters/{item['id']}/redeliver")
    assert response.status_code == 502
    assert "refused the redelivery with 400" in response.get_json()["error"]
    assert client.get("/api/deadletters?limit=0").status_code == 400


def test_without_deadletter_url_the_viewer_says_what_to_set() -> None:
    response = viewer_for(None).test_client().get("/api/deadletters")
    assert response.status_code == 503 and "DEADLETTER_URL" in response.get_json()["error"]


def test_an_unreachable_deadletter_service_is_a_502() -> None:
    client = viewer_for(f"http://127.0.0.1:{free_port()}").test_client()
    response = client.get("/api/deadletters")
    assert response.status_code == 502 and "did not answer" in response.get_json()["error"]
