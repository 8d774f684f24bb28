"""Sender identity through gunicorn: a kit service with OIDC_* set, a real issuer, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request
from tests.support.oidc import RunningIssuer
from tests.support.processes import ServedApp

AUDIENCE = "kittest.shop.svc.cluster.local"
ALLOWED = "system:serviceaccount:shop:*"
TRIGGER = "system:serviceaccount:shop:effect-oidc-eventing.knative.dev-trigger"
INTRUDER = "system:serviceaccount:elsewhere:intruder"


@pytest.fixture(scope="module")
def issuer() -> Iterator[RunningIssuer]:
    with RunningIssuer() as running:
        yield running


def oidc_env(issuer: RunningIssuer) -> dict[str, str]:
    return {
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_ISSUER": issuer.url,
        "OIDC_ALLOWED_SUBJECTS": ALLOWED,
    }


@pytest.fixture(scope="module")
def verifying(
    tmp_path_factory: pytest.TempPathFactory, issuer: RunningIssuer
) -> Iterator[ServedApp]:
    app = serve_kit_app(tmp_path_factory.mktemp("oidc"), **oidc_env(issuer))
    yield app
    app.stop()


def post_effect(url: str, event_id: str, token: str | None) -> requests.Response:
    headers, body = binary_request("test.effect", {}, id=event_id)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, data=body, headers=headers, timeout=10)


def effects(url: str) -> list[str]:
    response = requests.get(f"{url}/effects", timeout=5)
    assert response.status_code == 200, response.text
    return [row["event_id"] for row in response.json()]


def test_a_valid_token_reaches_the_handler(verifying: ServedApp, issuer: RunningIssuer) -> None:
    response = post_effect(verifying.url, "valid-1", issuer.mint(TRIGGER, AUDIENCE))
    assert response.status_code == 200, response.text
    assert "valid-1" in effects(verifying.url)


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_no_or_a_bad_token_is_a_401_and_the_handler_never_runs(
    verifying: ServedApp, token: str | None
) -> None:
    response = post_effect(verifying.url, f"unauthenticated-{token}", token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["field"] == "Authorization"
    assert f"unauthenticated-{token}" not in effects(verifying.url)


def test_a_sender_outside_the_allowed_subjects_is_a_403(
    verifying: ServedApp, issuer: RunningIssuer
) -> None:
    response = post_effect(verifying.url, "intruder-1", issuer.mint(INTRUDER, AUDIENCE))
    assert response.status_code == 403
    assert response.json()["subject"] == INTRUDER
    assert "intruder-1" not in effects(verifying.url)


def test_probes_metrics_and_the_json_api_stay_open(verifying: ServedApp) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert requests.get(verifying.url + path, timeout=5).status_code == 200, path
    placed = requests.post(f"{verifying.url}/orders", json={"order_id": "open-1"}, timeout=5)
    assert placed.status_code == 201, placed.text
    metrics = requests.get(f"{verifying.url}/metrics", timeout=5).text
    assert "shop_sender_refusals_total" in metrics


def test_the_log_names_the_refusal_and_never_the_token(
    verifying: ServedApp, issuer: RunningIssuer
) -> None:
    token = issuer.mint(INTRUDER, AUDIENCE)
    assert post_effect(verifying.url, "logged-1", token).status_code == 403
    logs = verifying.logs()
    assert f"sender {INTRUDER!r} is not allowed" in logs
    assert token.split(".")[2] not in logs


def test_an_issuer_unreachable_from_the_start_is_a_503_with_retry_after(
    tmp_path: Path,
) -> None:
    with RunningIssuer() as issuer:
        token = issuer.mint(TRIGGER, AUDIENCE)
        issuer.stop()
        app = serve_kit_app(tmp_path, **oidc_env(issuer))
        try:
            response = post_effect(app.url, "unchecked-1", token)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "10"
            assert "issuer is unreachable" in response.json()["error"]
            assert requests.get(f"{app.url}/healthz", timeout=5).status_code == 200
            assert "unchecked-1" not in effects(app.url)
        finally:
            app.stop()


def test_without_oidc_variables_no_token_is_asked_for(kit_url: str) -> None:
    assert post_effect(kit_url, "open-1", None).status_code == 200
