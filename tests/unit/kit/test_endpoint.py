"""The kit's `POST /` answers: status, headers and body for each outcome, batches, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent
from flask.testing import FlaskClient

from kit import HandlerSet, KitConfig, NewEvent, RetryLater, Service, Transaction, create_service
from kit.outbox import outbox
from tests.support.events import binary_request, structured_request


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    handlers = HandlerSet()

    @handlers.on("t.accept")
    def accept(event: CloudEvent, tx: Transaction) -> None:
        return None

    @handlers.on("t.reply")
    def reply(event: CloudEvent, tx: Transaction) -> NewEvent:
        return NewEvent("t.replied", {"for": event.get_id()})

    @handlers.on("t.busy")
    def busy(event: CloudEvent, tx: Transaction) -> None:
        raise RetryLater("the processor is busy", retry_after_seconds=3)

    @handlers.on("t.crash")
    def crash(event: CloudEvent, tx: Transaction) -> None:
        raise ZeroDivisionError("a bug")

    @handlers.on("t.busy-unknown")
    def busy_for_a_while(event: CloudEvent, tx: Transaction) -> None:
        raise RetryLater("the processor is busy")

    config = KitConfig(
        "endpoint",
        f"sqlite:///{tmp_path}/endpoint.db",
        "/shop/endpoint",
        relay_enabled=False,
        max_event_bytes=2048,
        log_level="WARNING",
    )
    started = create_service("endpoint", handlers, config=config).start()
    yield started
    started.close()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return service.app.test_client()


def batch(*events: tuple[str, str]) -> bytes:
    return json.dumps(
        [json.loads(structured_request(t, {}, id=event_id)[1]) for t, event_id in events]
    ).encode()


def post_batch(client: FlaskClient, body: bytes) -> Any:
    return client.post(
        "/", data=body, headers={"Content-Type": "application/cloudevents-batch+json"}
    )


def metric(client: FlaskClient, line: str) -> bool:
    return line in client.get("/metrics").get_data(as_text=True).splitlines()


def queued(service: Service) -> list[bytes]:
    assert service.engine is not None
    with service.engine.connect() as connection:
        return [row.body for row in connection.execute(sa.select(outbox.c.body))]


def test_an_accepted_event_is_a_202_with_an_empty_body(client: FlaskClient) -> None:
    headers, body = binary_request("t.accept", {})
    response = client.post("/", headers=headers, data=body)
    assert (response.status_code, response.get_data()) == (202, b"")
    assert response.headers["Content-Length"] == "0"


def test_a_structured_event_is_read_by_its_content_type(client: FlaskClient) -> None:
    headers, body = structured_request("t.accept", {})
    assert client.post("/", headers=headers, data=body).status_code == 202


def test_an_invalid_event_is_a_400_with_a_json_problem_and_counted(client: FlaskClient) -> None:
    headers, body = binary_request("t.accept", {})
    del headers["ce-id"]
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(response.get_data()))
    assert response.get_json()["attribute"] == "id"
    assert metric(client, 'shop_events_received_total{outcome="invalid",type=""} 1.0')


def test_an_event_over_the_size_limit_is_a_413(client: FlaskClient) -> None:
    headers, body = binary_request("t.accept", {"pad": "x" * 4096})
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 413
    assert "the limit is 2048" in response.get_json()["error"]


@pytest.mark.parametrize(("event_type", "retry_after"), [("t.busy", "3"), ("t.busy-unknown", None)])
def test_retry_later_is_a_503_with_retry_after_when_the_handler_gave_one(
    client: FlaskClient, event_type: str, retry_after: str | None
) -> None:
    headers, body = binary_request(event_type, {})
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 503
    assert response.get_json() == {"error": "the processor is busy"}
    assert response.headers.get("Retry-After") == retry_after


def test_a_reply_is_a_200_carrying_the_reply_event(client: FlaskClient) -> None:
    headers, body = binary_request("t.reply", {}, id="r-1")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "t.replied"
    assert response.headers["Content-Length"] == str(len(response.get_data()))
    assert json.loads(response.get_data()) == {"for": "r-1"}


def test_a_batch_is_a_202_and_its_replies_go_through_the_outbox(
    client: FlaskClient, service: Service
) -> None:
    response = post_batch(client, batch(("t.reply", "b-1"), ("t.accept", "b-2")))
    assert (response.status_code, response.get_data()) == (202, b"")
    assert [json.loads(body) for body in queued(service)] == [{"for": "b-1"}]


def test_a_batch_answers_its_first_failure_and_handles_nothing_after_it(
    client: FlaskClient, service: Service
) -> None:
    response = post_batch(client, batch(("t.accept", "b-1"), ("t.busy", "b-2"), ("t.reply", "b-3")))
    assert (response.status_code, response.headers.get("Retry-After")) == (503, "3")
    assert queued(service) == []
    again = post_batch(client, batch(("t.reply", "b-3")))
    assert again.status_code == 202
    assert [json.loads(body) for body in queued(service)] == [{"for": "b-3"}]


def test_other_requests_go_to_the_flask_app(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 405
    assert client.post("/elsewhere", data=b"{}").status_code == 404


def test_each_outcome_is_counted_by_type_and_unknown_types_share_one_label(
    client: FlaskClient,
) -> None:
    for event_type, event_id in [
        ("t.accept", "m-1"),
        ("t.accept", "m-1"),
        ("t.reply", "m-2"),
        ("t.busy", "m-3"),
        ("t.nobody", "m-4"),
    ]:
        headers, body = binary_request(event_type, {}, id=event_id)
        client.post("/", headers=headers, data=body)
    for labels in [
        'outcome="handled",type="t.accept"',
        'outcome="duplicate",type="t.accept"',
        'outcome="replied",type="t.reply"',
        'outcome="retry",type="t.busy"',
        'outcome="rejected",type="(no handler)"',
    ]:
        assert metric(client, f"shop_events_received_total{{{labels}}} 1.0"), labels


def test_a_handler_that_fails_is_a_500_naming_the_event_not_the_bug(client: FlaskClient) -> None:
    headers, body = binary_request("t.crash", {}, id="c-1")
    response = client.post("/", headers=headers, data=body)
    assert (response.status_code, response.get_json()) == (
        500,
        {"error": "handling event 'c-1' failed"},
    )
    assert metric(client, 'shop_events_received_total{outcome="error",type="t.crash"} 1.0')


def test_each_event_gets_one_outcome_log_line_with_the_stable_keys(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    handlers = HandlerSet()

    @handlers.on("t.busy")
    def busy(event: CloudEvent, tx: Transaction) -> None:
        raise RetryLater("busy")

    @handlers.on("t.accept")
    def accept(event: CloudEvent, tx: Transaction) -> None:
        return None

    config = KitConfig("logged", f"sqlite:///{tmp_path}/l.db", "/shop/logged", relay_enabled=False)
    logged = create_service("logged", handlers, config=config).start()
    client = logged.app.test_client()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    for event_type in ("t.accept", "t.busy"):
        headers, body = binary_request(
            event_type, {}, id=f"{event_type}-1", traceparent=f"00-{trace}-00f067aa0ba902b7-01"
        )
        client.post("/", headers=headers, data=body)
    logged.close()
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if "event_id" in line]
    outcomes = [line for line in lines if line.get("service") == "logged"]
    assert [(o["level"], o["message"], o["outcome"], o["status"]) for o in outcomes] == [
        ("info", "event handled", "handled", 202),
        ("warning", "event retry", "retry", 503),
    ]
    for line, event_type in zip(outcomes, ("t.accept", "t.busy"), strict=True):
        assert (line["event_id"], line["type"], line["source"], line["trace_id"]) == (
            f"{event_type}-1",
            event_type,
            "/tests",
            trace,
        )
        assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 60_000
