"""Without a live `shop up`, every command that needs one says so in one line, exit code 2.

A live run is one whose endpoints.json records a pid that exists and whose broker answers HTTP;
a file left from a run that ended is not one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shop.cli import main
from tests.support.processes import free_port
from tests.support.recording_sink import RecordingSink

COMMANDS = {
    "send": ["send", "--type", "t"],
    "tail": ["tail", "--count", "1"],
    "deadletters": ["deadletters"],
    "status --local": ["status", "--local"],
    "status": ["status"],
}


@pytest.fixture(scope="module")
def ended_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


@pytest.fixture
def answering() -> Iterator[RecordingSink]:
    with RecordingSink() as sink:
        yield sink


def write_endpoints(state_dir: Path, broker: str, pid: int | None) -> Path:
    base = broker.removesuffix("/shop/default")
    document = {"broker": broker, "viewer": base, "deadletter": base, "smtp": "smtp://x:1"}
    if pid is not None:
        document["pid"] = str(pid)
    (state_dir / "run").mkdir(parents=True, exist_ok=True)
    path = state_dir / "run" / "endpoints.json"
    path.write_text(json.dumps(document))
    return path


def run_cli(
    args: list[str], state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    code = main([*args, "--state-dir", str(state_dir)])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def assert_one_line(err: str, starts: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(starts), err
    assert "HTTPConnectionPool" not in err and "Traceback" not in err


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_port_nothing_listens_on_is_reported_as_no_shop_up_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    port = free_port()
    write_endpoints(tmp_path, f"http://127.0.0.1:{port}/shop/default", pid=None)

    code, err = run_cli(args, tmp_path, capsys)

    assert code == 2
    assert_one_line(err, f"shop {args[0]}: no shop up on 127.0.0.1:{port}: start it with `make up`")


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_file_left_by_a_run_that_ended_is_not_read_as_live(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    answering: RecordingSink,
    ended_pid: int,
) -> None:
    # Something answers on the recorded port, but the shop up that wrote the file is gone.
    write_endpoints(tmp_path, answering.url, pid=ended_pid)
    netloc = answering.url.split("/")[2]

    code, err = run_cli(args, tmp_path, capsys)

    assert code == 2
    assert_one_line(err, f"shop {args[0]}: no shop up on {netloc}: start it with `make up`")
    assert answering.accepted() == []


def test_a_live_pid_whose_broker_does_not_answer_is_not_live_either(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    write_endpoints(tmp_path, f"http://127.0.0.1:{port}/shop/default", pid=os.getpid())

    code, err = run_cli(["send", "--type", "t"], tmp_path, capsys)

    assert code == 2
    assert_one_line(
        err,
        f"shop send: no shop up answers on 127.0.0.1:{port} (connection refused), "
        f"though pid {os.getpid()} runs: is it still starting?",
    )


def test_a_live_pid_and_an_answering_broker_are_a_running_shop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answering: RecordingSink
) -> None:
    write_endpoints(tmp_path, answering.url, pid=os.getpid())

    assert main(["send", "--type", "t", "--state-dir", str(tmp_path)]) == 0
    assert len(answering.accepted()) == 1


def test_no_endpoints_file_says_how_to_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["deadletters"], tmp_path, capsys)

    assert code == 2
    assert_one_line(err, f"shop deadletters: no shop up in {tmp_path} (no {tmp_path}/run/")
    assert "start it with `make up` (or pass --url URL" in err


@pytest.mark.parametrize(
    "args",
    [["send", "--type", "t", "--to", "{url}/shop/default"], ["deadletters", "--url", "{url}"]],
    ids=["send --to", "deadletters --url"],
)
def test_a_given_url_nothing_answers_at_is_named_in_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code = main([arg.format(url=url) for arg in args])

    err = capsys.readouterr().err
    assert code == 1
    assert_one_line(err, f"shop {args[0]}: ")
    assert f"{url}" in err and "did not answer: connection refused" in err
