"""What a handler receives: the SDK's CloudEvent with the attributes and data that arrived."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent
from flask.testing import FlaskClient

from kit import HandlerSet, KitConfig, Transaction, create_service
from tests.support.events import binary_request


@pytest.fixture
def seen(tmp_path: Path) -> Iterator[tuple[FlaskClient, list[CloudEvent]]]:
    handlers = HandlerSet()
    received: list[CloudEvent] = []

    @handlers.on_any()
    def keep(event: CloudEvent, tx: Transaction) -> None:
        received.append(event)

    config = KitConfig(
        "incoming", f"sqlite:///{tmp_path}/in.db", "/shop/incoming", relay_enabled=False
    )
    service = create_service("incoming", handlers, config=config).start()
    yield service.app.test_client(), received
    service.close()


def deliver(client: FlaskClient, **attributes: Any) -> None:
    headers, body = binary_request("t.any", {"n": 1}, **attributes)
    assert client.post("/", headers=headers, data=body).status_code == 202


def test_a_handler_sees_no_time_when_the_sender_set_none(
    seen: tuple[FlaskClient, list[CloudEvent]],
) -> None:
    client, received = seen
    deliver(client)
    [event] = received
    assert event.get_time() is None
    assert "time" not in event.get_attributes()


def test_a_handler_sees_the_time_the_sender_set(
    seen: tuple[FlaskClient, list[CloudEvent]],
) -> None:
    client, received = seen
    deliver(client, time="2026-01-02T03:04:05Z")
    [event] = received
    assert event.get_time() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.get_data() == {"n": 1}


def post_raw(client: FlaskClient, content_type: str | None, body: bytes) -> Any:
    headers = {"ce-specversion": "1.0", "ce-id": "r-1", "ce-source": "/tests", "ce-type": "t.any"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post("/", headers=headers, data=body)


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        ("application/json", b'{"n": 1}', {"n": 1}),
        (None, b'{"n": 1}', {"n": 1}),  # no datacontenttype: JSON, as CloudEvents has it
        ("application/vnd.shop.test+json", b"[1]", [1]),
        ("text/plain; charset=utf-8", "h\u00e9".encode(), "h\u00e9"),
        ("TEXT/csv", b"a,b", "a,b"),
        ("text/plain", b"\xff\xfe", b"\xff\xfe"),  # not UTF-8: the bytes, as they came
        ("application/octet-stream", b"\x00\x01", b"\x00\x01"),
        ("image/png", b"text/", b"text/"),
    ],
)
def test_a_handler_gets_json_parsed_text_decoded_and_anything_else_as_bytes(
    seen: tuple[FlaskClient, list[CloudEvent]], content_type: str | None, body: bytes, data: Any
) -> None:
    client, received = seen
    assert post_raw(client, content_type, body).status_code == 202
    [event] = received
    assert event.get_data() == data
    assert type(event.get_data()) is type(data)


def test_data_that_is_not_the_json_it_claims_is_a_400_naming_data(
    seen: tuple[FlaskClient, list[CloudEvent]],
) -> None:
    client, received = seen
    response = post_raw(client, "application/json", b"{nope")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "data is not valid JSON: Expecting property name enclosed in double quotes"
        " at line 1 column 2",
        "attribute": "data",
    }
    assert received == []
