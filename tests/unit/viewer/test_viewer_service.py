"""The viewer as a service: it takes every event and never replies; its JSON API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kit.config import ConfigError
from services.viewer.app import ViewerConfig, create_app
from tests.support.events import wire_event
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import ServedFlask, viewer_config
from wire.http_binding import BATCH_JSON, to_binary, to_structured, to_structured_document
from wire.topology import parse_topology

KSVC = {"apiVersion": "serving.knative.dev/v1", "kind": "Service"}


def topology_trigger(name: str, subscriber: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """One trigger of a topology document (wire.topology), in broker `shop/default`."""
    return {
        "namespace": "shop",
        "name": name,
        "broker": "default",
        "subscriber": subscriber,
        **fields,
    }


def deliver(client: FlaskClient, event_type: str, data: Any = None, **attributes: Any) -> Any:
    headers, body = to_binary(wire_event(event_type, data, **attributes))
    return client.post("/", headers=headers, data=body)


def events(client: FlaskClient, **query: str) -> list[dict[str, Any]]:
    response = client.get("/api/events", query_string=query)
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["events"]
    return found


def test_every_event_is_answered_202_with_an_empty_body(viewer: Flask) -> None:
    client = viewer.test_client()
    response = deliver(client, "anything.at.all", {"a": 1})
    assert response.status_code == 202 and response.get_data() == b""
    headers, body = to_structured(wire_event("other.type", {"b": 2}))
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 202 and response.get_data() == b""
    assert not [name for name, _ in response.headers if name.lower().startswith("ce-")]


def test_a_batch_is_answered_202_and_every_event_kept(viewer: Flask) -> None:
    client = viewer.test_client()
    batch = [to_structured_document(wire_event("t", {"n": n}, id=f"b{n}")) for n in range(3)]
    response = client.post("/", data=json.dumps(batch), headers={"Content-Type": BATCH_JSON})
    assert response.status_code == 202
    assert [event["id"] for event in events(client)] == ["b2", "b1", "b0"]


def test_received_events_are_listed_newest_first_with_everything(viewer: Flask) -> None:
    client = viewer.test_client()
    deliver(client, "order.created", {"order_id": "o-1"}, id="e1", subject="o-1", partitionkey="k")
    deliver(client, "order.confirmed", {"order_id": "o-1"}, id="e2", subject="o-1")
    first, second = events(client)
    assert (first["id"], second["id"]) == ("e2", "e1")
    assert second["type"] == "order.created" and second["subject"] == "o-1"
    assert second["attributes"]["source"] == "/tests"
    assert second["extensions"] == {"partitionkey": "k"}
    assert second["data"] == {"order_id": "o-1"}
    assert second["seq"] == 1 and first["seq"] == 2


def test_the_history_is_bounded_and_says_how_many_it_dropped(viewer: Flask) -> None:
    client = viewer.test_client()
    for number in range(8):
        deliver(client, "t", id=f"e{number}")
    body = client.get("/api/events").get_json()
    assert [event["id"] for event in body["events"]] == ["e7", "e6", "e5", "e4", "e3"]
    assert (body["capacity"], body["size"], body["dropped"]) == (5, 5, 3)
    status = client.get("/api/status").get_json()
    assert status["dropped"] == 3
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "shop_viewer_history_dropped 3.0" in metrics


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("type = 'order.created'", ["a"]),
        ("type LIKE 'order.%'", ["b", "a"]),
        ('{"exact": {"type": "payment.declined"}}', ["c"]),
        ('{"prefix": {"type": "order."}}', ["b", "a"]),
        ("suffix: {subject: '-2'}", ["c"]),
        ('{"not": {"prefix": {"type": "order."}}}', ["c"]),
        ("priority > 3", ["b"]),
    ],
)
def test_the_filter_takes_cesql_and_the_trigger_dialects(
    viewer: Flask, expression: str, expected: list[str]
) -> None:
    client = viewer.test_client()
    deliver(client, "order.created", id="a", subject="o-1")
    deliver(client, "order.confirmed", id="b", subject="o-1", priority="5")
    deliver(client, "payment.declined", id="c", subject="o-2")
    assert [event["id"] for event in events(client, filter=expression)] == expected


@pytest.mark.parametrize("expression", ["type = ", '{"exact": {}}', '{"regex": {"type": "x"}}'])
def test_a_filter_the_broker_would_refuse_is_a_400_that_says_why(
    viewer: Flask, expression: str
) -> None:
    response = viewer.test_client().get("/api/events", query_string={"filter": expression})
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == "filter" and body["error"]


def test_the_timeline_lists_one_subjects_events_with_the_delays_between_them(
    viewer: Flask,
) -> None:
    client = viewer.test_client()
    deliver(client, "order.created", id="1", subject="o-1")
    deliver(client, "order.created", id="2", subject="o-2")
    deliver(client, "payment.authorized", id="3", subject="o-1")
    deliver(client, "order.confirmed", id="4", subject="o-1")
    timeline = client.get("/api/timeline?subject=o-1").get_json()
    assert [event["type"] for event in timeline["events"]] == [
        "order.created",
        "payment.authorized",
        "order.confirmed",
    ]
    offsets = [event["offset_ms"] for event in timeline["events"]]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    delays = [event["delay_ms"] for event in timeline["events"]]
    assert delays[0] == 0 and sum(delays) == pytest.approx(offsets[-1], abs=0.5)
    assert timeline["duration_ms"] == offsets[-1]


def test_a_timeline_without_a_subject_is_a_400(viewer: Flask) -> None:
    assert viewer.test_client().get("/api/timeline").status_code == 400


def test_subjects_are_listed_most_recent_first_with_their_counts(viewer: Flask) -> None:
    client = viewer.test_client()
    deliver(client, "order.created", id="1", subject="o-1")
    deliver(client, "order.created", id="2", subject="o-2")
    deliver(client, "order.confirmed", id="3", subject="o-1")
    deliver(client, "no.subject", id="4")
    subjects = client.get("/api/subjects").get_json()["subjects"]
    assert subjects == [
        {"subject": "o-1", "count": 2, "last_type": "order.confirmed"},
        {"subject": "o-2", "count": 1, "last_type": "order.created"},
    ]


def test_the_page_and_its_assets_are_served_by_the_service(viewer: Flask) -> None:
    client = viewer.test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/assets/viewer.js" in html and "/assets/viewer.css" in html
    for asset in ("viewer.js", "viewer.css"):
        response = client.get(f"/assets/{asset}")
        assert response.status_code == 200, asset
        text = response.get_data(as_text=True)
        # Nothing is fetched from elsewhere: no absolute URLs but the SVG namespace.
        assert "https://" not in text and "//cdn" not in text
        assert text.replace("http://www.w3.org/2000/svg", "").count("http://") == 0
    assert "http" not in html.replace("http-equiv", "")


def test_topology_from_the_environment(broker: RecordingSink) -> None:
    view = parse_topology(
        {
            "brokers": [
                {
                    "namespace": "shop",
                    "name": "default",
                    "deadLetterSink": {"ref": {**KSVC, "name": "deadletter"}},
                }
            ],
            "triggers": [
                topology_trigger(
                    "t", {"ref": {**KSVC, "name": "order"}}, filters=[{"exact": {"type": "a"}}]
                )
            ],
        }
    )
    app = create_app(viewer_config(topology=view))
    body = app.test_client().get("/api/topology").get_json()
    assert body["source"] == "TOPOLOGY"
    assert body["triggers"][0]["filter"] == "type = a"
    assert body["triggers"][0]["subscriber"] == "order"
    assert body["brokers"][0]["deadLetterSink"] == "deadletter"


def test_topology_from_a_url_is_fetched_when_asked(broker: RecordingSink) -> None:
    document = {"brokers": [], "triggers": [topology_trigger("t", {"uri": "http://127.0.0.1:1/x"})]}
    source = Flask("topology")
    source.add_url_rule("/_shop/topology", "t", lambda: document)
    with ServedFlask(source) as served:
        app = create_app(viewer_config(topology_url=f"{served.url}/_shop/topology"))
        body = app.test_client().get("/api/topology").get_json()
    assert body["triggers"][0]["subscriber"] == "http://127.0.0.1:1/x"
    assert body["source"].endswith("/_shop/topology")


def test_a_topology_url_in_another_spelling_is_a_502_that_says_so(broker: RecordingSink) -> None:
    trigger = topology_trigger("t", {"uri": "http://127.0.0.1:1/x"})
    document = {"brokers": [], "triggers": [{**trigger, "dead_letter_sink": "http://dls/"}]}
    source = Flask("topology")
    source.add_url_rule("/_shop/topology", "t", lambda: document)
    with ServedFlask(source) as served:
        app = create_app(viewer_config(topology_url=f"{served.url}/_shop/topology"))
        response = app.test_client().get("/api/topology")
    assert response.status_code == 502
    assert (
        "triggers[0].dead_letter_sink: not a field of the topology document"
        in (response.get_json()["error"])
    )
    assert "(it is spelled deadLetterSink)" in response.get_json()["error"]


def test_an_unreachable_topology_url_is_a_502(broker: RecordingSink) -> None:
    app = create_app(viewer_config(topology_url="http://127.0.0.1:1/_shop/topology"))
    response = app.test_client().get("/api/topology")
    assert (
        response.status_code == 502 and "cannot read the topology" in response.get_json()["error"]
    )


def test_without_a_topology_the_answer_is_empty(viewer: Flask) -> None:
    assert viewer.test_client().get("/api/topology").get_json() == {
        "brokers": [],
        "triggers": [],
        "source": None,
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VIEWER_HISTORY", "0", "VIEWER_HISTORY"),
        ("VIEWER_HISTORY", "lots", "VIEWER_HISTORY"),
        ("TOPOLOGY", "{not json", "TOPOLOGY"),
        ("TOPOLOGY", '{"brokers": [], "triggers": [{"name": "t"}]}', "subscriber: required"),
        (
            "TOPOLOGY",
            '{"brokers": [{"namespace": "shop", "name": "default", "dead_letter_sink": "x"}],'
            ' "triggers": []}',
            "it is spelled deadLetterSink",
        ),
    ],
)
def test_a_bad_setting_stops_the_viewer_with_its_name(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ViewerConfig.from_env({variable: value})


def test_settings_are_read_from_the_environment() -> None:
    config = ViewerConfig.from_env(
        {
            "VIEWER_HISTORY": "50",
            "BROKER_URL": "http://broker/shop/default",
            "DEADLETTER_URL": "http://deadletter.shop.svc.cluster.local",
            "TOPOLOGY_URL": "http://127.0.0.1:8080/_shop/topology",
            "TOPOLOGY": json.dumps(
                {"brokers": [], "triggers": [topology_trigger("t", {"ref": {**KSVC, "name": "s"}})]}
            ),
        }
    )
    assert config.history == 50
    assert config.broker_url == "http://broker/shop/default"
    assert config.deadletter_url == "http://deadletter.shop.svc.cluster.local"
    assert config.topology_url == "http://127.0.0.1:8080/_shop/topology"
    assert config.topology is not None and config.topology.triggers[0].subscriber == "s"
    assert (
        ViewerConfig.from_env({"K_SINK": "http://k/", "BROKER_URL": "x"}).broker_url == "http://k/"
    )


@pytest.mark.parametrize(
    ("content_type", "body", "shown"),
    [
        (None, b"not json at all", {"data_base64": "bm90IGpzb24gYXQgYWxs"}),
        ("text/plain", "grüß".encode(), {"data": "grüß"}),
        ("application/octet-stream", b"\x00\xffabc", {"data_base64": "AP9hYmM="}),
        ("application/octet-stream", b"utf-8 bytes", {"data_base64": "dXRmLTggYnl0ZXM="}),
        ("application/json", b"{broken", {"data_base64": "e2Jyb2tlbg=="}),
        ("application/json", b"[" * 100 + b"]" * 100, {"data_base64": "W1tb"}),
    ],
)
def test_every_valid_event_is_taken_whatever_its_data(
    viewer: Flask, content_type: str | None, body: bytes, shown: dict[str, str]
) -> None:
    client = viewer.test_client()
    headers, _ = to_binary(wire_event("t", id="d"))
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 202, response.get_json()
    (event,) = events(client)
    key, value = next(iter(shown.items()))
    assert event[key].startswith(value)
    other = "data" if key == "data_base64" else "data_base64"
    assert other not in event


def test_a_redelivered_event_is_listed_once_with_its_delivery_count(viewer: Flask) -> None:
    client = viewer.test_client()
    for _ in range(3):
        deliver(client, "t", {"a": 1}, id="same")
    deliver(client, "t", {"a": 1}, id="same", source="/other")
    listed = events(client)
    assert [(e["source"], e["deliveries"]) for e in listed] == [("/other", 1), ("/tests", 3)]
