"""The viewer's /catalog page and /asyncapi.json: the AsyncAPI document, served and read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from markupsafe import escape

from catalog import load_catalog
from catalog.asyncapi import DOCUMENT_FILE, load_document
from services.viewer.app import create_app
from services.viewer.catalog_page import Party, catalog_view
from tests.unit.viewer.conftest import viewer_config


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(viewer_config())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def section(html: str, event_type: str) -> str:
    """The page's section of one event type."""
    start = html.index(f'<section class="event" id="{event_type}">')
    return html[start : html.index("</section>", start)]


def test_asyncapi_json_is_the_checked_in_document(client: FlaskClient) -> None:
    answer = client.get("/asyncapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.data == DOCUMENT_FILE.read_bytes()
    assert answer.json is not None and answer.json["asyncapi"] == "3.0.0"


def test_the_page_has_a_section_for_every_catalog_type(client: FlaskClient) -> None:
    answer = client.get("/catalog")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    for entry in load_catalog():
        text = section(html, entry.type)
        assert escape(entry.description) in text
        assert f'<a href="#{entry.type}">' in html


def test_a_section_says_who_sends_and_receives_it_and_through_what(client: FlaskClient) -> None:
    text = section(client.get("/catalog").get_data(as_text=True), "order.created")
    senders = re.search(r"<strong>Sent by</strong>\s*<span>(.*?)</span>", text, re.S)
    assert senders is not None and senders.group(1) == "order"
    for receiver in (
        'inventory <span class="muted">(Trigger inventory-order-created)</span>',
        'payment <span class="muted">(Trigger payment-order-created)</span>',
        'viewer <span class="muted">(Trigger viewer-all-events)</span>',
        'deadletter <span class="muted">(dead-letter sink)</span>',
    ):
        assert receiver in text
    assert "notification <span" not in text


def test_a_section_lists_the_attributes_the_fields_and_the_example(client: FlaskClient) -> None:
    text = section(client.get("/catalog").get_data(as_text=True), "order.created")
    attributes = text[
        text.index('<table class="attributes">') : text.index('<table class="fields">')
    ]
    for header in ("ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "Content-Type"):
        assert f"<code>{header}</code>" in attributes
    assert escape('const "order.created"') in attributes
    fields = text[text.index('<table class="fields">') : text.index("<h3>Example</h3>")]
    for field in ("order_id", "lines", "lines[].sku", "lines[].unit_price", "payment_token"):
        assert f"<code>{field}</code>" in fields
    assert "minor units of the currency (cents)" in fields
    example = load_document()["components"]["messages"]["order.created"]["examples"][0]
    assert escape(json.dumps(example["payload"], indent=2)) in text
    assert escape(f'"ce-id": "{example["headers"]["ce-id"]}"') in text
    assert "<code>Content-Type: application/json</code>" in text


def test_the_page_loads_nothing_from_elsewhere(client: FlaskClient) -> None:
    html = client.get("/catalog").get_data(as_text=True)
    assert "<script" not in html
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []
    assert re.findall(r"@import|url\(", html) == []


def test_what_the_document_says_is_escaped_on_the_page(app: Flask) -> None:
    document = load_document()
    document["components"]["messages"]["order.created"]["summary"] = "<script>alert(1)</script>"
    with app.test_request_context("/catalog"):
        html = render_template("catalog.html", view=catalog_view(document))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_view_takes_parties_and_rows_from_the_document_alone() -> None:
    document: dict[str, Any] = {
        "info": {"title": "T", "version": "2", "description": "D"},
        "channels": {"b": {"title": "Broker x/b", "address": "/x/b"}},
        "operations": {
            "send.a": {
                "action": "send",
                "x-service": "a",
                "title": "a sends",
                "messages": [{"$ref": "#/channels/b/messages/t.one"}],
            },
            "receive.r": {
                "action": "receive",
                "x-service": "c",
                "title": "Trigger r",
                "messages": [{"$ref": "#/channels/b/messages/t.two"}],
            },
        },
        "components": {
            "messages": {
                "t.two": {"summary": "Two.", "payload": {"$ref": "#/components/schemas/t.two"}},
                "t.one": {
                    "summary": "One.",
                    "x-producer": "a",
                    "payload": {
                        "type": "object",
                        "required": ["n"],
                        "properties": {
                            "n": {"type": "integer", "minimum": 1, "description": "count"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
            "schemas": {"t.two": {"type": "object", "properties": {"m": {"type": "string"}}}},
        },
    }
    view = catalog_view(document)
    assert (view.title, view.version, view.channels) == ("T", "2", (("Broker x/b", "/x/b"),))
    one, two = view.events
    assert (one.type, one.producer, one.senders, one.receivers) == (
        "t.one",
        "a",
        (Party("a", "a sends"),),
        (),
    )
    assert [
        (row.name, row.required, row.type, row.constraints, row.description) for row in one.fields
    ] == [
        ("n", True, "integer", "minimum 1", "count"),
        ("tags", False, "array of string", "", ""),
    ]
    assert two.receivers == (Party("c", "Trigger r"),)
    assert [row.name for row in two.fields] == ["m"]
