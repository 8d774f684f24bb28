"""Receiving dead letters and finding them again: what is stored, filters, deletion, metrics."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.events import wire_event
from wire.http_binding import WireEvent, to_binary, to_structured

ARRIVAL = "2026-05-01T10:00:00.000Z"
FAILED = "http://127.0.0.1:9/payment"


def dead_letter(
    event_type: str = "order.created",
    data: Any = None,
    *,
    destination: str = FAILED,
    code: str = "503",
    error_body: bytes = b"payment is down",
    arrival: str = ARRIVAL,
    **attributes: str | int | bool,
) -> WireEvent:
    """An event as the broker hands it to its dead-letter sink."""
    return wire_event(
        event_type,
        {"order_id": "o-1"} if data is None else data,
        knativeerrordest=destination,
        knativeerrorcode=code,
        knativeerrordata=base64.b64encode(error_body).decode()[:1024],
        knativearrivaltime=arrival,
        **attributes,
    )


def deliver(client: FlaskClient, event: WireEvent, *, structured: bool = False) -> int:
    headers, body = to_structured(event) if structured else to_binary(event)
    return client.post("/", headers=headers, data=body).status_code


def listed(client: FlaskClient, **query: str) -> list[dict[str, Any]]:
    response = client.get("/deadletters", query_string=query)
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["dead_letters"]
    return items


def test_a_dead_letter_is_stored_with_its_destination_code_and_decoded_error(app: Flask) -> None:
    client = app.test_client()
    event = dead_letter(subject="o-1", id="e-1", source="/shop/order")
    assert deliver(client, event) == 202
    (item,) = listed(client)
    assert item["event_id"] == "e-1" and item["source"] == "/shop/order"
    assert item["type"] == "order.created" and item["subject"] == "o-1"
    assert item["destination"] == FAILED
    assert item["error_code"] == 503
    assert item["error_data"] == "payment is down"
    assert item["error_data_truncated"] is False
    assert item["redelivered_at"] is None


def test_the_detail_shows_the_original_event_without_the_knative_error_extensions(
    app: Flask,
) -> None:
    client = app.test_client()
    deliver(client, dead_letter(data={"order_id": "o-9", "total": 12}, id="e-9", partitionkey="k"))
    (item,) = listed(client)
    detail = client.get(f"/deadletters/{item['id']}").get_json()
    event = detail["event"]
    assert event["id"] == "e-9" and event["data"] == {"order_id": "o-9", "total": 12}
    assert event["partitionkey"] == "k" and event["knativearrivaltime"] == ARRIVAL
    assert not [name for name in event if name.startswith("knativeerror")]
    assert detail["destination"] == FAILED and detail["redeliveries"] == []


def test_one_event_failed_by_two_triggers_is_two_dead_letters(app: Flask) -> None:
    client = app.test_client()
    for destination in ["http://a.local/", "http://b.local/", "http://a.local/"]:
        assert deliver(client, dead_letter(id="same", destination=destination)) == 202
    assert sorted(item["destination"] for item in listed(client)) == [
        "http://a.local/",
        "http://b.local/",
    ]


def test_the_same_event_dead_lettered_again_after_a_new_arrival_is_kept_again(app: Flask) -> None:
    client = app.test_client()
    deliver(client, dead_letter(id="same", arrival="2026-05-01T10:00:00Z"))
    deliver(client, dead_letter(id="same", arrival="2026-05-01T10:05:00Z"))
    assert len(listed(client)) == 2


def test_a_structured_dead_letter_with_an_integer_code_is_read_the_same(app: Flask) -> None:
    client = app.test_client()
    event = dead_letter(id="s-1")
    attributes = dict(event.attributes)
    attributes["knativeerrorcode"] = 422
    assert deliver(client, WireEvent(attributes, event.data), structured=True) == 202
    (item,) = listed(client)
    assert item["error_code"] == 422 and item["error_data"] == "payment is down"


def test_binary_data_of_any_content_type_is_kept_byte_for_byte(app: Flask) -> None:
    client = app.test_client()
    raw = bytes(range(256))
    event = dead_letter(id="bin")
    attributes = dict(event.attributes, datacontenttype="application/octet-stream")
    deliver(client, WireEvent(attributes, raw))
    (item,) = listed(client)
    detail = client.get(f"/deadletters/{item['id']}").get_json()
    assert base64.b64decode(detail["event"]["data_base64"]) == raw


def test_error_data_cut_by_knative_is_decoded_and_marked_truncated(app: Flask) -> None:
    client = app.test_client()
    body = ("é" * 2000).encode()  # base64 longer than 1024 characters: Knative cuts it
    deliver(client, dead_letter(error_body=body))
    (item,) = listed(client)
    assert item["error_data_truncated"] is True
    assert item["error_data"].startswith("é" * 100)
    assert len(item["error_data"]) <= 768


def test_error_data_that_is_not_base64_is_shown_as_it_came(app: Flask) -> None:
    client = app.test_client()
    event = dead_letter().with_attributes(knativeerrordata="not base64!")
    deliver(client, event)
    assert listed(client)[0]["error_data"] == "not base64!"


def test_filters_by_type_subject_and_destination(app: Flask) -> None:
    client = app.test_client()
    deliver(client, dead_letter("order.created", subject="o-1", destination="http://x/"))
    deliver(client, dead_letter("order.created", subject="o-2", destination="http://y/"))
    deliver(client, dead_letter("payment.declined", subject="o-1", destination="http://y/"))
    assert {item["subject"] for item in listed(client, type="order.created")} == {"o-1", "o-2"}
    assert {item["type"] for item in listed(client, subject="o-1")} == {
        "order.created",
        "payment.declined",
    }
    assert [item["subject"] for item in listed(client, destination="http://x/")] == ["o-1"]
    both = listed(client, type="payment.declined", destination="http://y/")
    assert [item["subject"] for item in both] == ["o-1"]


def test_filters_by_time_received_and_lists_newest_first(app: Flask) -> None:
    client = app.test_client()
    before = datetime.now(UTC) - timedelta(seconds=1)
    deliver(client, dead_letter(id="first"))
    deliver(client, dead_letter(id="second"))
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert [item["event_id"] for item in listed(client)] == ["second", "first"]
    assert len(listed(client, since=before.isoformat())) == 2
    assert listed(client, since=after.isoformat()) == []
    assert listed(client, until=before.isoformat()) == []
    assert len(listed(client, until=after.isoformat().replace("+00:00", "Z"))) == 2


def test_limit_caps_the_list_but_not_the_total(app: Flask) -> None:
    client = app.test_client()
    for number in range(3):
        deliver(client, dead_letter(id=f"e-{number}"))
    response = client.get("/deadletters?limit=2").get_json()
    assert len(response["dead_letters"]) == 2 and response["total"] == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("limit=1001", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-05-01T10:00:00", "until"),
        ("state=lost", "state"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_field(app: Flask, query: str, field: str) -> None:
    response = app.test_client().get(f"/deadletters?{query}")
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_an_unknown_dead_letter_is_a_404(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/deadletters/999").status_code == 404
    assert client.delete("/deadletters/999").status_code == 404
    assert client.post("/deadletters/999/redeliver").status_code == 404
    assert "999" in client.get("/deadletters/999").get_json()["error"]


def test_delete_discards_a_dead_letter(app: Flask) -> None:
    client = app.test_client()
    deliver(client, dead_letter(id="gone"))
    deliver(client, dead_letter(id="kept"))
    gone = next(item for item in listed(client) if item["event_id"] == "gone")
    assert client.delete(f"/deadletters/{gone['id']}").status_code == 204
    assert client.get(f"/deadletters/{gone['id']}").status_code == 404
    assert [item["event_id"] for item in listed(client)] == ["kept"]


def test_the_summary_counts_dead_letters_by_destination(app: Flask) -> None:
    client = app.test_client()
    deliver(client, dead_letter(id="1", destination="http://x/"))
    deliver(client, dead_letter(id="2", destination="http://x/"))
    deliver(client, dead_letter(id="3", destination="http://y/"))
    summary = client.get("/deadletters/summary").get_json()
    assert (summary["total"], summary["pending"], summary["redelivered"]) == (3, 3, 0)
    counts = {entry["destination"]: entry["total"] for entry in summary["by_destination"]}
    assert counts == {"http://x/": 2, "http://y/": 1}


def test_the_metric_counts_stored_dead_letters_by_destination(app: Flask) -> None:
    client = app.test_client()
    deliver(client, dead_letter(id="1", destination="http://x/"))
    deliver(client, dead_letter(id="2", destination="http://x/"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'shop_deadletters{destination="http://x/",state="pending"} 2.0' in text


def test_dead_letters_survive_a_restart_of_the_service(database_url: str) -> None:
    from tests.unit.deadletter.conftest import build_app

    first = build_app(database_url, None)
    deliver(first.test_client(), dead_letter(id="durable"))
    first.extensions["shop.kit"].close()
    second = build_app(database_url, None)
    try:
        assert [item["event_id"] for item in listed(second.test_client())] == ["durable"]
    finally:
        second.extensions["shop.kit"].close()


def test_the_attributes_are_stored_exactly_as_they_arrived(app: Flask) -> None:
    client = app.test_client()
    event = dead_letter(id="exact", time="2026-05-01T10:00:00.123456789Z", subject="o-1")
    deliver(client, event)
    (item,) = listed(client)
    assert item["time"] == "2026-05-01T10:00:00.123456789Z"
    detail = client.get(f"/deadletters/{item['id']}").get_json()
    assert detail["event"]["time"] == "2026-05-01T10:00:00.123456789Z"
    assert json.loads(json.dumps(detail["event"]))["subject"] == "o-1"


def test_a_dead_letter_whose_json_data_is_broken_is_kept_too(app: Flask) -> None:
    client = app.test_client()
    event = WireEvent(dict(dead_letter(id="broken").attributes), b"{not json")
    assert deliver(client, event) == 202
    assert [item["event_id"] for item in listed(client)] == ["broken"]
