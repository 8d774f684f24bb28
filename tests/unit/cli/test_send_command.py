"""`shop send` posting to a real HTTP server, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shop.cli import main
from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink
from wire.http_binding import STRUCTURED_JSON, parse_binary


def test_send_posts_a_binary_mode_event_and_prints_the_status(
    broker: RecordingSink, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "send",
            "--type",
            "order.created",
            "--id",
            "e-1",
            "--subject",
            "o-1",
            "--field",
            "order_id=o-1",
            "--extension",
            "partitionkey=o-1",
            "--to",
            broker.url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("202 Accepted  order.created  id=e-1  (binary)")
    (request,) = broker.accepted()
    event = parse_binary(request.headers.items(), request.headers.get("content-type"), request.body)
    assert (event.id, event.source, event.get("subject")) == ("e-1", "/shop/cli", "o-1")
    assert event.get("partitionkey") == "o-1"
    assert event.data is not None and json.loads(event.data) == {"order_id": "o-1"}


def test_send_structured_posts_one_json_document(broker: RecordingSink) -> None:
    assert main(["send", "--type", "t", "--data", "[1]", "--structured", "--to", broker.url]) == 0
    (request,) = broker.accepted()
    assert request.headers["content-type"] == STRUCTURED_JSON
    assert json.loads(request.body)["data"] == [1]


def test_a_4xx_or_5xx_answer_exits_1(broker: RecordingSink) -> None:
    broker.status = 400
    assert main(["send", "--type", "t", "--to", broker.url]) == 1
    broker.status = 503
    assert main(["send", "--type", "t", "--to", broker.url]) == 1


def test_nobody_answering_exits_1_and_says_where(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/shop/default"
    assert main(["send", "--type", "t", "--to", url]) == 1
    assert f"{url} did not answer" in capsys.readouterr().err


def test_without_shop_up_or_to_it_says_how_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "--type", "t", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "shop up" in err and "--to" in err


def test_the_broker_url_comes_from_endpoints_json(broker: RecordingSink, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "endpoints.json").write_text(json.dumps({"broker": broker.url}))
    assert main(["send", "--type", "t", "--state-dir", str(tmp_path)]) == 0
    assert len(broker.accepted()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "has spaces %"], "source"),
        (["--extension", "UPPER=1"], "UPPER"),
        (["--data", "{broken"], "--data"),
        (["--field", "a=1", "--field", "a=2"], "set twice"),
    ],
)
def test_an_event_that_cannot_be_valid_is_refused_before_sending(
    broker: RecordingSink, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["send", "--type", "t", *args, "--to", broker.url]) == 2
    assert message in capsys.readouterr().err
    assert broker.accepted() == []


def test_send_carries_the_token_of_the_token_file(broker: RecordingSink, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("the-sinkbinding-token\n")
    argv = ["send", "--type", "t", "--to", broker.url, "--token-file", str(token_file)]
    assert main(argv) == 0
    (request,) = broker.accepted()
    assert request.headers["authorization"] == "Bearer the-sinkbinding-token"


def test_the_token_file_defaults_to_oidc_token_file(
    broker: RecordingSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-the-environment")
    monkeypatch.setenv("OIDC_TOKEN_FILE", str(token_file))
    assert main(["send", "--type", "t", "--to", broker.url]) == 0
    assert broker.accepted()[0].headers["authorization"] == "Bearer from-the-environment"


def test_without_a_token_file_send_posts_no_authorization(
    broker: RecordingSink, tmp_path: Path
) -> None:
    argv = ["send", "--type", "t", "--to", broker.url, "--token-file", str(tmp_path / "none")]
    assert main(argv) == 0
    assert "authorization" not in broker.accepted()[0].headers


def test_an_empty_token_file_is_refused_before_sending(
    broker: RecordingSink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("")
    argv = ["send", "--type", "t", "--to", broker.url, "--token-file", str(token_file)]
    assert main(argv) == 2
    assert f"--token-file: the token file {token_file} is empty" in capsys.readouterr().err
    assert broker.accepted() == []
