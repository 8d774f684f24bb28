"""The kit's `POST /` with sender identity on: who may send, and what everyone else is answered."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent
from flask import Blueprint
from flask.testing import FlaskClient

from kit import HandlerSet, KitConfig, Service, Transaction, create_service
from kit.api import json_response
from kit.config import SenderIdentityConfig
from kit.idempotency import processed
from tests.support.events import binary_request, structured_request
from tests.support.oidc import RunningIssuer
from wire.logformat import JsonFormatter
from wire.oidc.keys import IssuerSettings
from wire.oidc.subjects import parse_patterns

AUDIENCE = "order.shop.svc.cluster.local"
TRIGGER = "system:serviceaccount:shop:order-created-oidc-eventing.knative.dev-trigger"
OTHER = "system:serviceaccount:elsewhere:intruder"
REFETCH_SECONDS = 0.5


def build_service(tmp_path: Path, identity: SenderIdentityConfig | None) -> Service:
    handlers = HandlerSet()

    @handlers.on("t.accept")
    def accept(event: CloudEvent, tx: Transaction) -> None:
        return None

    routes = Blueprint("public_api", __name__)

    @routes.post("/orders")
    def place_order() -> Any:
        return json_response(201, {"placed": True})

    config = KitConfig(
        "receiver",
        f"sqlite:///{tmp_path}/receiver.db",
        "/shop/receiver",
        relay_enabled=False,
        log_level="WARNING",
        sender_identity=identity,
    )
    service = create_service("receiver", handlers, config=config)
    service.app.register_blueprint(routes)
    return service.start()


def identity_of(issuer: RunningIssuer, allowed: str = "") -> SenderIdentityConfig:
    return SenderIdentityConfig(
        AUDIENCE,
        IssuerSettings(issuer.url),
        parse_patterns(allowed),
        key_refetch_seconds=REFETCH_SECONDS,
    )


@pytest.fixture
def service(tmp_path: Path, oidc_issuer: RunningIssuer) -> Iterator[Service]:
    started = build_service(tmp_path, identity_of(oidc_issuer))
    yield started
    started.close()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return service.app.test_client()


def post_event(
    client: FlaskClient, token: str | None = None, authorization: str | None = None, **kw: Any
) -> Any:
    headers, body = binary_request("t.accept", {}, **kw)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.post("/", headers=headers, data=body)


def handled_ids(service: Service) -> list[str]:
    assert service.engine is not None
    with service.engine.connect() as connection:
        return [row.id for row in connection.execute(sa.select(processed.c.id))]


def metric(client: FlaskClient, line: str) -> bool:
    return line in client.get("/metrics").get_data(as_text=True).splitlines()


def test_a_valid_token_lets_the_event_through_to_its_handler(
    client: FlaskClient, service: Service, oidc_issuer: RunningIssuer
) -> None:
    response = post_event(client, oidc_issuer.mint(TRIGGER, AUDIENCE), id="e-1")
    assert response.status_code == 202, response.get_data(as_text=True)
    assert handled_ids(service) == ["e-1"]


def test_a_structured_event_and_a_batch_are_checked_alike(
    client: FlaskClient, service: Service, oidc_issuer: RunningIssuer
) -> None:
    headers, body = structured_request("t.accept", {}, id="s-1")
    assert client.post("/", headers=headers, data=body).status_code == 401
    headers["Authorization"] = f"Bearer {oidc_issuer.mint(TRIGGER, AUDIENCE)}"
    assert client.post("/", headers=headers, data=body).status_code == 202
    batch = json.dumps([json.loads(structured_request("t.accept", {}, id="b-1")[1])])
    batch_headers = {"Content-Type": "application/cloudevents-batch+json"}
    assert client.post("/", headers=batch_headers, data=batch).status_code == 401
    assert handled_ids(service) == ["s-1"]


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, "the request has no bearer token"),
        ("Basic dXNlcjpwYXNz", "the Authorization header does not hold a bearer token"),
        ("Bearer ", "the Authorization header does not hold a bearer token"),
        ("Bearer not-a-jwt", "the bearer token is not a JWT"),
    ],
)
def test_no_bearer_token_is_a_401_and_nothing_is_handled(
    client: FlaskClient, service: Service, authorization: str | None, error: str
) -> None:
    response = post_event(client, authorization=authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {"error": error, "field": "Authorization"}
    assert handled_ids(service) == []


def test_an_invalid_token_is_a_401_naming_why(
    client: FlaskClient, service: Service, oidc_issuer: RunningIssuer
) -> None:
    past = 1_700_000_000
    expired = oidc_issuer.sign(
        oidc_issuer.claims(TRIGGER, AUDIENCE, iat=past, nbf=past, exp=past + 60)
    )
    cases = {
        expired: "the token has expired",
        oidc_issuer.mint(TRIGGER, "payment.shop.svc.cluster.local"): (
            f"the token is not for audience {AUDIENCE!r}"
        ),
    }
    for token, error in cases.items():
        response = post_event(client, token)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.get_json() == {"error": error, "field": "Authorization"}
    assert handled_ids(service) == []
    assert metric(client, 'shop_sender_refusals_total{reason="invalid"} 2.0')


def test_a_subject_outside_the_allowed_patterns_is_a_403_naming_it(
    tmp_path: Path, oidc_issuer: RunningIssuer
) -> None:
    service = build_service(tmp_path, identity_of(oidc_issuer, "system:serviceaccount:shop:*"))
    try:
        client = service.app.test_client()
        response = post_event(client, oidc_issuer.mint(OTHER, AUDIENCE), id="o-1")
        assert response.status_code == 403
        assert response.get_json() == {
            "error": f"sender {OTHER!r} is not allowed to send events here",
            "subject": OTHER,
        }
        assert post_event(client, oidc_issuer.mint(TRIGGER, AUDIENCE), id="t-1").status_code == 202
        assert handled_ids(service) == ["t-1"]
        assert metric(client, 'shop_sender_refusals_total{reason="forbidden"} 1.0')
    finally:
        service.close()


def test_an_unreachable_issuer_without_cached_keys_is_a_503_with_retry_after(
    client: FlaskClient, service: Service, oidc_issuer: RunningIssuer
) -> None:
    token = oidc_issuer.mint(TRIGGER, AUDIENCE)
    oidc_issuer.stop()
    for _ in range(2):  # the second within the refetch interval: still 503, not 401
        response = post_event(client, token)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.get_json() == {
            "error": "the sender's token cannot be checked now: the token issuer is unreachable"
        }
    assert handled_ids(service) == []
    assert metric(client, 'shop_sender_refusals_total{reason="issuer_unavailable"} 2.0')


def test_health_readiness_metrics_and_the_json_api_need_no_token(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.post("/orders", json={}).status_code == 201
    assert client.options("/").status_code == 200


def test_without_sender_identity_no_token_is_needed(tmp_path: Path) -> None:
    service = build_service(tmp_path, None)
    try:
        assert post_event(service.app.test_client(), id="open-1").status_code == 202
        assert handled_ids(service) == ["open-1"]
    finally:
        service.close()


class Records(logging.Handler):
    """Keeps what a logger writes, as the JSON lines the services print."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(JsonFormatter().format(record))


def test_each_refusal_is_logged_with_its_reason_and_sender_never_the_token(
    client: FlaskClient, oidc_issuer: RunningIssuer
) -> None:
    records = Records()
    logger = logging.getLogger("shop.kit")
    logger.addHandler(records)
    try:
        token = oidc_issuer.mint(TRIGGER, "payment.shop.svc.cluster.local")
        post_event(client, token)
        post_event(client)
    finally:
        logger.removeHandler(records)
    assert not [line for line in records.lines if token.split(".")[2] in line]
    lines = [json.loads(line) for line in records.lines]
    assert [(line["message"], line["status"], line.get("sender")) for line in lines] == [
        (f"sender refused: the token is not for audience {AUDIENCE!r}", 401, TRIGGER),
        ("sender refused: the request has no bearer token", 401, None),
    ]
    assert {line["level"] for line in lines} == {"warning"}
