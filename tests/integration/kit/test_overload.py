"""Overload is answered, not queued: past its bound a service answers 429 with Retry-After, its
probes keep answering, and the broker delivering to it honours the Retry-After and delivers
everything in the end."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from tests.integration.broker.helpers import send
from tests.integration.kit.conftest import serve_kit_app
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.events import binary_request
from tests.support.processes import wait_for

SLOW = {"GUNICORN_THREADS": "1", "MAX_QUEUED_REQUESTS": "2", "TEST_EFFECT_SECONDS": "0.3"}


def test_past_its_bound_a_service_answers_429_with_retry_after_and_its_probes_answer(
    tmp_path: Path,
) -> None:
    app = serve_kit_app(tmp_path, **SLOW)
    try:

        def post(n: int) -> requests.Response:
            headers, body = binary_request("test.effect", {"n": n})
            return requests.post(app.url, headers=headers, data=body, timeout=30)

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(post, range(10)))
            health = requests.get(f"{app.url}/healthz", timeout=5)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses.count(200) >= 2, statuses
        refused = [answer for answer in answers if answer.status_code == 429]
        assert refused, statuses
        for answer in refused:
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["limit"] == 2 and "limit" in answer.json()["error"]
        assert health.status_code == 200
    finally:
        app.stop()


def test_the_broker_honours_a_429_retry_after_and_delivers_everything(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    app = serve_kit_app(tmp_path / "app", **SLOW)
    broker = BrokerProcess(
        tmp_path / "broker",
        [
            broker_manifest(
                delivery={
                    "retry": 10,
                    "backoffPolicy": "exponential",
                    "backoffDelay": "PT0.1S",
                    "retryAfterMax": "PT5S",
                }
            ),
            trigger_manifest(
                "slow", {"uri": app.url}, filter={"attributes": {"type": "test.effect"}}
            ),
        ],
        {},
    ).start()
    try:
        ids = [send(broker, "test.effect", {"n": n}).id for n in range(12)]

        def delivered() -> list[dict[str, Any]] | None:
            events = broker.get("/_shop/events?limit=1000")["events"]
            states = [d["state"] for e in events if e["id"] in ids for d in e["deliveries"]]
            return events if states.count("delivered") == len(ids) else None

        events = wait_for(delivered, timeout=60, what="every event delivered")
        overloaded = []
        for event in events:
            attempts = broker.get(f"/_shop/events/{event['seq']}")["attempts"]
            for before, after in itertools.pairwise(attempts):
                if before["status"] == 429:
                    overloaded.append((before, after))
        assert overloaded, "the service was never over its bound"
        for before, after in overloaded:
            waited = _seconds(after["time"]) - _seconds(before["time"])
            # Retry-After: 1 overrides the 0.1 s back-off (less the first attempt's duration).
            assert waited >= 1.0 - before["duration_ms"] / 1000 - 0.05, (before, after)
    finally:
        broker.stop()
        app.stop()


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
