"""Once-only handling under concurrent duplicates and a worker killed before it answered."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.integration.kit.conftest import serve_kit_app
from tests.support.events import binary_request
from tests.support.processes import wait_for


def effects(url: str, event_id: str) -> list[str]:
    rows = requests.get(f"{url}/effects", timeout=5).json()
    return [row["note"] for row in rows if row["event_id"] == event_id]


def test_the_same_event_20_times_in_parallel_has_one_effect_and_one_answer(
    tmp_path: Path, database_url: str
) -> None:
    app = serve_kit_app(
        tmp_path, DATABASE_URL=database_url, WEB_CONCURRENCY="2", TEST_EFFECT_SECONDS="0.2"
    )
    try:
        headers, body = binary_request("test.effect", {}, id="dup-1", subject="order-9")

        def deliver(_: int) -> tuple[int, str | None, bytes]:
            response = requests.post(app.url, data=body, headers=headers, timeout=30)
            return response.status_code, response.headers.get("ce-id"), response.content

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(deliver, range(20)))
        assert {status for status, _, _ in answers} == {200}
        assert len(set(answers)) == 1, "every delivery must get the very same reply"
        assert effects(app.url, "dup-1") == ["effect"]
    finally:
        app.stop()


def test_a_worker_killed_after_commit_gives_the_same_reply_and_no_second_effect(
    tmp_path: Path, database_url: str
) -> None:
    marker = tmp_path / "killed-once"
    app = serve_kit_app(tmp_path, DATABASE_URL=database_url, TEST_KILL_MARKER=str(marker))
    try:
        headers, body = binary_request("test.kill", {}, id="kill-1")
        with pytest.raises(requests.ConnectionError):
            requests.post(app.url, data=body, headers=headers, timeout=30)
        assert marker.exists(), "the handler ran and its worker was killed before answering"

        def redeliver() -> requests.Response | None:
            response = requests.post(app.url, data=body, headers=headers, timeout=5)
            return response if response.status_code == 200 else None

        first = wait_for(redeliver, timeout=30, what="a redelivery after the worker restarted")
        second = requests.post(app.url, data=body, headers=headers, timeout=5)
        assert first.headers["ce-id"] == second.headers["ce-id"]
        assert first.content == second.content == b'{"for":"kill-1"}'
        assert effects(app.url, "kill-1") == ["kill"]
    finally:
        app.stop()
