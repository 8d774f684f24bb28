"""`Idempotency-Key` under gunicorn (two workers) with many copies of one request at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.integration.kit.conftest import serve_kit_app

COPIES = 20


def effects(url: str, event_id: str) -> list[str]:
    rows = requests.get(f"{url}/effects", timeout=10).json()
    return [row["note"] for row in rows if row["event_id"] == event_id]


def test_20_copies_of_a_keyed_request_at_once_make_one_effect_and_one_answer(
    tmp_path: Path, database_url: str
) -> None:
    app = serve_kit_app(tmp_path, DATABASE_URL=database_url, WEB_CONCURRENCY="2")
    try:
        order = {"order_id": "keyed-1"}

        def place(_: int) -> requests.Response:
            headers = {"Idempotency-Key": '"same-key"'}
            return requests.post(f"{app.url}/orders", json=order, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=COPIES) as pool:
            answers = list(pool.map(place, range(COPIES)))
        statuses = {answer.status_code for answer in answers}
        created = [answer for answer in answers if answer.status_code == 201]
        if database_url.startswith("sqlite"):
            # Writers queue for SQLite's lock: each copy finds the first one's answer.
            assert statuses == {201}, [answer.text for answer in answers]
        else:
            # PostgreSQL: a copy that arrives while the first runs is told so.
            assert statuses <= {201, 409}, [answer.text for answer in answers]
            for refused in (answer for answer in answers if answer.status_code == 409):
                assert refused.headers["Retry-After"] == "1"
                assert refused.json()["field"] == "Idempotency-Key"
        assert len({answer.content for answer in created}) == 1, "one answer, replayed"
        originals = [a for a in created if "Idempotent-Replayed" not in a.headers]
        assert len(originals) == 1
        replay = place(0)
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.content == originals[0].content
        assert effects(app.url, "keyed-1") == ["order"]
    finally:
        app.stop()
