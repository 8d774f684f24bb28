"""The viewer's write actions (send, redeliver, discard) as VIEWER_WRITE_ACTIONS allows them.

Each mode runs against the real app, a stand-in broker and a real deadletter service, and checks
both the answer and that a refused request changed nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from kit.config import ConfigError
from services.viewer.app import ViewerConfig, create_app
from services.viewer.write_access import WriteAccess, WriteMode
from tests.support.recording_sink import RecordingSink
from tests.unit.viewer.conftest import viewer_config
from tests.unit.viewer.test_dead_letter_pass_through import dead_letter_into

TOKEN = "s3cret-write-token-0123456789abcdef"
SETTING = "VIEWER_WRITE_ACTIONS"


def viewer_with(access: WriteAccess, broker: RecordingSink, deadletter_url: str) -> Flask:
    return create_app(
        viewer_config(broker_url=broker.url, deadletter_url=deadletter_url, write_access=access)
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_requests(client: FlaskClient, dead_letter: int, headers: dict[str, str]) -> list[Any]:
    """Send, redeliver (through the broker), discard and redeliver by filter, in that order,
    each with `headers`."""
    return [
        client.post("/api/send", json={"type": "t.written"}, headers=headers),
        client.post(
            f"/api/deadletters/{dead_letter}/redeliver", json={"to": "broker"}, headers=headers
        ),
        client.delete(f"/api/deadletters/{dead_letter}", headers=headers),
        client.post("/api/deadletters/redeliver", json={"filter": "true"}, headers=headers),
    ]


@dataclass(frozen=True)
class Kept:
    """A dead letter the deadletter service keeps: the service's URL and the letter's id."""

    url: str
    id: int


@dataclass(frozen=True)
class Refusal:
    """A write access, the headers a request brings, and the answer it must get."""

    access: WriteAccess
    headers: dict[str, str]
    status: int
    says: str


@pytest.fixture
def kept(deadletter_service: str) -> Kept:
    dead_letter_into(deadletter_service, "dl-write")
    listed = requests.get(f"{deadletter_service}/deadletters", timeout=5).json()
    (item,) = listed["dead_letters"]
    return Kept(deadletter_service, int(item["id"]))


@pytest.mark.parametrize(
    ("access", "headers"),
    [
        pytest.param(WriteAccess(WriteMode.ON), {}, id="on"),
        pytest.param(WriteAccess(WriteMode.TOKEN, TOKEN), bearer(TOKEN), id="token"),
        pytest.param(
            WriteAccess(WriteMode.TOKEN, TOKEN),
            {"authorization": f"bearer  {TOKEN}"},
            id="token-any-case",
        ),
    ],
)
def test_allowed_writes_send_redeliver_and_discard(
    access: WriteAccess, headers: dict[str, str], broker: RecordingSink, kept: Kept
) -> None:
    client = viewer_with(access, broker, kept.url).test_client()
    sent, redelivered, discarded, by_filter = write_requests(client, kept.id, headers)
    assert sent.status_code == 200, sent.get_json()
    assert redelivered.status_code == 200, redelivered.get_json()
    assert discarded.status_code == 204
    assert by_filter.status_code == 200 and by_filter.get_json()["count"] == 0
    assert [request.headers["ce-type"] for request in broker.accepted()] == [
        "t.written",
        "order.created",
    ]
    # The token is the viewer's, not the broker's: it is not passed on.
    assert all("authorization" not in request.headers for request in broker.accepted())
    assert client.get(f"/api/deadletters/{kept.id}").status_code == 404


ON_TOKEN = WriteAccess(WriteMode.TOKEN, TOKEN)
NO_BEARER = "Authorization: Bearer"


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            Refusal(WriteAccess(WriteMode.OFF), {}, 403, "write actions are off"), id="off"
        ),
        pytest.param(
            Refusal(WriteAccess(WriteMode.OFF), bearer(TOKEN), 403, "write actions are off"),
            id="off-with-a-token",
        ),
        pytest.param(Refusal(ON_TOKEN, {}, 401, NO_BEARER), id="no-token"),
        pytest.param(
            Refusal(ON_TOKEN, bearer(TOKEN[:-1]), 401, "not the viewer's write token"),
            id="wrong-token",
        ),
        pytest.param(
            Refusal(ON_TOKEN, {"Authorization": f"Basic {TOKEN}"}, 401, NO_BEARER),
            id="other-scheme",
        ),
        pytest.param(
            Refusal(ON_TOKEN, {"Authorization": "Bearer "}, 401, NO_BEARER), id="empty-bearer"
        ),
    ],
)
def test_refused_writes_say_why_and_change_nothing(
    refusal: Refusal, broker: RecordingSink, kept: Kept, caplog: pytest.LogCaptureFixture
) -> None:
    client = viewer_with(refusal.access, broker, kept.url).test_client()
    with caplog.at_level(logging.DEBUG):
        answers = write_requests(client, kept.id, refusal.headers)
    for answer in answers:
        assert answer.status_code == refusal.status, answer.get_json()
        body = answer.get_json()
        assert refusal.says in body["error"] and body["setting"] == SETTING
        if refusal.status == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert broker.accepted() == []
    letter = client.get(f"/api/deadletters/{kept.id}").get_json()
    assert letter["event"]["id"] == "dl-write" and letter["redelivered_at"] is None
    assert TOKEN not in caplog.text and TOKEN[:-1] not in caplog.text


@pytest.mark.parametrize(
    "access",
    [WriteAccess(WriteMode.OFF), WriteAccess(WriteMode.TOKEN, TOKEN)],
    ids=["off", "token"],
)
def test_reading_stays_open_and_the_status_says_how_writes_stand(
    access: WriteAccess, broker: RecordingSink, kept: Kept
) -> None:
    client = viewer_with(access, broker, kept.url).test_client()
    assert client.get("/").status_code == 200
    assert client.get("/api/events").status_code == 200
    assert client.get("/api/deadletters").get_json()["dead_letters"][0]["id"] == kept.id
    assert client.get(f"/api/deadletters/{kept.id}").status_code == 200
    assert client.get("/api/deadletters/summary").status_code == 200
    assert client.get("/api/topology").status_code == 200
    status = client.get("/api/status").get_json()
    assert status["write_actions"] == access.mode.value
    assert TOKEN not in str(status)


def test_writes_are_on_unless_the_environment_says_otherwise() -> None:
    assert ViewerConfig.from_env({}).write_access == WriteAccess(WriteMode.ON)
    assert ViewerConfig.from_env({SETTING: "off"}).write_access.mode is WriteMode.OFF
    assert ViewerConfig.from_env({SETTING: " On "}).write_access.mode is WriteMode.ON
    app = create_app(viewer_config())
    assert app.test_client().get("/api/status").get_json()["write_actions"] == "on"


def test_the_token_comes_from_its_file_before_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")  # as `echo` or a Secret made from a file
    from_file = ViewerConfig.from_env(
        {SETTING: "token", "VIEWER_WRITE_TOKEN_FILE": str(path), "VIEWER_WRITE_TOKEN": "other"}
    ).write_access
    assert from_file == WriteAccess(WriteMode.TOKEN, TOKEN)
    from_variable = WriteAccess.from_env({SETTING: "token", "VIEWER_WRITE_TOKEN": f" {TOKEN} "})
    assert from_variable.token == TOKEN
    # Neither the config's repr nor the access's names the token.
    assert TOKEN not in repr(from_file) and TOKEN not in repr(ViewerConfig.from_env({}))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({SETTING: "maybe"}, "VIEWER_WRITE_ACTIONS must be one of on, off, token, not 'maybe'"),
        ({SETTING: "true"}, "must be one of on, off, token"),
        ({SETTING: "token"}, "needs a token: set VIEWER_WRITE_TOKEN_FILE or VIEWER_WRITE_TOKEN"),
        ({SETTING: "token", "VIEWER_WRITE_TOKEN": "  "}, "needs a token"),
        ({SETTING: "token", "VIEWER_WRITE_TOKEN_FILE": "/nonexistent/token"}, "cannot read"),
    ],
)
def test_a_write_setting_that_cannot_work_stops_the_viewer_at_start(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ViewerConfig.from_env(env)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"VIEWER_WRITE_TOKEN_FILE: {path} is empty"):
        WriteAccess.from_env({SETTING: "token", "VIEWER_WRITE_TOKEN_FILE": str(path)})
