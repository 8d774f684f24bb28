"""The send form: the event it builds, posted to the broker in the mode asked for."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import viewer_config
from wire.http_binding import STRUCTURED_JSON, parse_binary


def send(viewer: Flask, **form: Any) -> Any:
    return viewer.test_client().post("/api/send", json=form)


def test_binary_mode_posts_ce_headers_and_the_json_data(
    viewer: Flask, broker: RecordingSink
) -> None:
    response = send(
        viewer,
        type="order.created",
        source="/tests/form",
        id="form-1",
        subject="o-1",
        extensions={"partitionkey": "o-1"},
        data='{"order_id": "o-1", "lines": [1, 2]}',
        mode="binary",
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == 202
    (request,) = broker.accepted()
    event = parse_binary(request.headers.items(), request.headers.get("content-type"), request.body)
    assert (event.id, event.source, event.type) == ("form-1", "/tests/form", "order.created")
    assert event.get("subject") == "o-1" and event.get("partitionkey") == "o-1"
    assert event.get("datacontenttype") == "application/json"
    assert event.data is not None and json.loads(event.data) == {"order_id": "o-1", "lines": [1, 2]}


def test_structured_mode_posts_one_json_document(viewer: Flask, broker: RecordingSink) -> None:
    response = send(viewer, type="t.structured", data='{"a": 1}', mode="structured")
    assert response.status_code == 200
    (request,) = broker.accepted()
    assert request.headers["content-type"] == STRUCTURED_JSON
    document = json.loads(request.body)
    assert document["type"] == "t.structured" and document["data"] == {"a": 1}
    assert document["source"] == "/shop/viewer" and document["id"] == response.get_json()["id"]


def test_blank_fields_are_left_out_and_an_id_is_made_up(
    viewer: Flask, broker: RecordingSink
) -> None:
    first = send(viewer, type="t", id="", subject=" ", data="").get_json()
    second = send(viewer, type="t").get_json()
    assert first["id"] and first["id"] != second["id"]
    request = broker.accepted()[0]
    assert "ce-subject" not in request.headers and request.body == b""
    assert "content-type" not in request.headers


def test_text_data_goes_as_it_was_typed(viewer: Flask, broker: RecordingSink) -> None:
    send(viewer, type="t", datacontenttype="text/plain", data="hello {not json")
    (request,) = broker.accepted()
    assert request.body == b"hello {not json"
    assert request.headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"type": "t", "data": "{broken"}, "data"),
        ({"type": "t", "extensions": {"Bad-Name": "x"}}, "Bad-Name"),
        ({"type": "t", "source": "not a uri ref with spaces%"}, "source"),
        ({"type": "t", "mode": "carrier-pigeon"}, "mode"),
        ({"source": "/x"}, "type"),
    ],
)
def test_a_form_that_cannot_be_a_valid_event_is_a_400_naming_the_field(
    viewer: Flask, broker: RecordingSink, form: dict[str, Any], field: str | None
) -> None:
    response = send(viewer, **form)
    assert response.status_code == 400, response.get_json()
    assert response.get_json().get("field") == field
    assert broker.accepted() == []


def test_an_event_the_broker_refuses_is_reported_with_its_answer(
    viewer: Flask, broker: RecordingSink
) -> None:
    broker.status = 400
    response = send(viewer, type="t")
    assert response.status_code == 502
    body = response.get_json()
    assert body["status"] == 400 and "refused the event with 400" in body["error"]


def test_a_broker_that_does_not_answer_is_a_502() -> None:
    from services.viewer.app import create_app

    app = create_app(viewer_config(broker_url=f"http://127.0.0.1:{free_port()}/shop/default"))
    response = app.test_client().post("/api/send", json={"type": "t"})
    assert response.status_code == 502 and "did not answer" in response.get_json()["error"]


def test_without_a_broker_the_form_says_what_to_set() -> None:
    from services.viewer.app import create_app

    response = create_app(viewer_config()).test_client().post("/api/send", json={"type": "t"})
    assert response.status_code == 503 and "K_SINK" in response.get_json()["error"]
