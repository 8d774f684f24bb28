"""What a kit service answers on POST /, through gunicorn and real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request, structured_request
from tests.support.processes import ServedApp
from wire.http_binding import parse_request
from wire.limits import MAX_HEADER_BYTES

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def post(url: str, request: tuple[dict[str, str], bytes]) -> requests.Response:
    headers, body = request
    return requests.post(url, data=body, headers=headers, timeout=10)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_methods_other_than_post_get_405_with_a_json_body(kit_url: str, method: str) -> None:
    response = requests.request(method, kit_url, timeout=5)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "error" in response.json()


def test_a_handled_event_gets_202_and_an_empty_body(kit_url: str) -> None:
    response = post(kit_url, binary_request("io.cloudevents.test", {"a": 1}))
    assert (response.status_code, response.content) == (202, b"")


def test_a_reply_is_a_binary_mode_event_with_trace_context_carried(kit_url: str) -> None:
    request = binary_request("test.effect", {}, subject="order-1", traceparent=TRACEPARENT)
    response = post(kit_url, request)
    assert response.status_code == 200
    _, [reply] = parse_request(
        response.headers.get("Content-Type"), response.headers.items(), response.content
    )
    assert reply.type == "test.reply"
    assert reply.source == "/shop/kittest"
    assert reply.get("subject") == "order-1"
    assert json.loads(reply.data or b"") == {"for": request[0]["ce-id"]}
    assert reply.get("dataschema") == "urn:shop:schema:test.reply"
    assert reply.get("time")
    traceparent = reply.get("traceparent") or ""
    assert traceparent.split("-")[1] == TRACEPARENT.split("-")[1]
    assert traceparent.split("-")[2] != TRACEPARENT.split("-")[2]


def test_a_type_without_handler_is_a_400_naming_the_type(kit_url: str) -> None:
    response = post(kit_url, binary_request("com.example.unknown", {}))
    assert response.status_code == 400
    assert response.json()["attribute"] == "type"
    assert "com.example.unknown" in response.json()["error"]


def test_data_not_matching_the_schema_of_its_type_is_a_400(kit_url: str) -> None:
    response = post(kit_url, structured_request("test.order.placed", {"order_id": "o-1"}))
    assert response.status_code == 400
    assert response.json()["attribute"] == "data"
    assert "amount" in response.json()["error"]
    accepted = post(
        kit_url, structured_request("test.order.placed", {"order_id": "o", "amount": 1})
    )
    assert accepted.status_code == 202


def test_json_data_that_does_not_parse_is_a_400(kit_url: str) -> None:
    headers, _ = binary_request("test.order.placed", {})
    response = requests.post(kit_url, data=b"{not json", headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["attribute"] == "data"


def test_retry_later_is_a_503_with_retry_after(kit_url: str) -> None:
    response = post(kit_url, binary_request("test.retry", {}))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {"error": "the card processor is busy"}


def test_a_handler_bug_is_a_500_logged_with_the_event_id(
    tmp_path: Path,
) -> None:
    app = serve_kit_app(tmp_path)
    try:
        request = binary_request("test.crash", {}, id="crash-123")
        response = post(app.url, request)
        assert response.status_code == 500
        assert "crash-123" in response.json()["error"]
        app.stop()
        failures = [
            json.loads(line)
            for line in app.logs().splitlines()
            if line.startswith("{") and '"handler failed"' in line
        ]
        assert failures and failures[0]["event_id"] == "crash-123"
        assert "ZeroDivisionError" in failures[0]["exception"]
    finally:
        app.stop()


def test_an_event_format_other_than_json_is_a_415(kit_url: str) -> None:
    response = requests.post(
        kit_url, data=b"\x00", headers={"Content-Type": "application/cloudevents+avro"}, timeout=5
    )
    assert response.status_code == 415
    assert "avro" in response.json()["error"]


@pytest.mark.parametrize(
    ("header", "value"), [("ce-subject", "%C0%A0"), ("ce-id", ""), ("ce-my.ext", "x")]
)
def test_invalid_headers_are_a_400_naming_the_attribute(
    kit_url: str, header: str, value: str
) -> None:
    headers, body = binary_request("io.cloudevents.test", {})
    headers[header] = value
    response = requests.post(kit_url, data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["attribute"] in header


def test_a_64_kib_binary_mode_event_is_accepted(kit_url: str) -> None:
    # CloudEvents: intermediaries must forward events of 64 KiB; half in a header, half in data.
    big = "x" * (32 * 1024 - 512)
    response = post(kit_url, binary_request("io.cloudevents.test", {"pad": big}, bigext=big))
    assert response.status_code == 202, response.text


def test_headers_over_the_limit_are_a_431_stating_it(kit_url: str) -> None:
    big = "x" * MAX_HEADER_BYTES
    response = post(kit_url, binary_request("io.cloudevents.test", {}, bigext=big))
    assert response.status_code == 431
    assert response.json() == {
        "error": f"the request's headers exceed {MAX_HEADER_BYTES} bytes",
        "limit": MAX_HEADER_BYTES,
    }


@pytest.fixture(scope="module")
def small_limit_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app: ServedApp = serve_kit_app(tmp_path_factory.mktemp("small"), MAX_EVENT_BYTES="4096")
    yield app.url
    app.stop()


def test_an_event_above_the_size_limit_is_a_413(small_limit_url: str) -> None:
    response = post(small_limit_url, structured_request("io.cloudevents.test", {"pad": "x" * 5000}))
    assert response.status_code == 413
    assert "error" in response.json()
    fits = post(small_limit_url, structured_request("io.cloudevents.test", {"pad": "x" * 3000}))
    assert fits.status_code == 202


def test_health_readiness_and_metrics(kit_url: str) -> None:
    assert requests.get(f"{kit_url}/healthz", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{kit_url}/readyz", timeout=5).json()["status"] == "ready"
    post(kit_url, binary_request("test.retry", {}))
    metrics = requests.get(f"{kit_url}/metrics", timeout=5).text
    assert 'shop_events_received_total{outcome="retry",type="test.retry"}' in metrics
    assert "shop_event_handling_seconds_bucket" in metrics
    assert "shop_outbox_backlog" in metrics


def test_every_event_gets_one_json_log_line_with_stable_keys(tmp_path: Path) -> None:
    app = serve_kit_app(tmp_path)
    try:
        post(app.url, binary_request("test.effect", {}, id="logged-1", traceparent=TRACEPARENT))
        post(app.url, binary_request("test.retry", {}, id="logged-2"))
    finally:
        app.stop()
    lines = [json.loads(line) for line in app.logs().splitlines() if line.startswith("{")]
    outcomes = {
        line["event_id"]: line for line in lines if "outcome" in line and "event_id" in line
    }
    replied, retried = outcomes["logged-1"], outcomes["logged-2"]
    assert replied["outcome"] == "replied" and replied["status"] == 200
    assert replied["trace_id"] == TRACEPARENT.split("-")[1]
    assert (replied["type"], replied["source"], replied["service"]) == (
        "test.effect",
        "/tests",
        "kittest",
    )
    assert replied["duration_ms"] >= 0 and replied["level"] == "info"
    assert (retried["outcome"], retried["status"], retried["level"]) == ("retry", 503, "warning")
    assert len([line for line in lines if line.get("event_id") == "logged-1"]) == 1


@pytest.mark.parametrize(
    ("header", "value"),
    [("ce-time", "2018-04-05T17:31:00Z%0A"), ("ce-source", "%0A"), ("ce-subject", "a%00b")],
)
def test_percent_encoded_control_characters_are_a_400_not_a_500(
    kit_url: str, header: str, value: str
) -> None:
    headers, body = binary_request("io.cloudevents.test", {})
    headers[header] = value
    response = requests.post(kit_url, data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["attribute"] == header[3:]


@pytest.mark.parametrize(
    "body",
    [
        b'{"specversion":"1.0","id":"1","source":"/s","type":"io.cloudevents.test","data":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}",
        b"[" * 100_000,
        b'{"specversion":"1.0","id":"1","source":"/s","type":"io.cloudevents.test","data":"\\ud800"}',
        b'{"specversion":"1.0","id":"1","source":"/s","type":"io.cloudevents.test","data":NaN}',
    ],
)
def test_hostile_structured_json_is_a_short_400(kit_url: str, body: bytes) -> None:
    response = requests.post(
        kit_url, data=body, headers={"Content-Type": "application/cloudevents+json"}, timeout=5
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.content) < 300


def test_binary_json_data_nested_too_deeply_is_a_400_naming_data(kit_url: str) -> None:
    headers, _ = binary_request("io.cloudevents.test", {})
    response = requests.post(kit_url, data=b"[" * 70 + b"]" * 70, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json() == {
        "error": "data nests arrays and objects deeper than 64 levels",
        "attribute": "data",
    }
