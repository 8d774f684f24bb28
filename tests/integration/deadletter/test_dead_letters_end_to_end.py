"""Dead letters through the real local broker: kept, listed, redelivered, on SQLite and PostgreSQL.

`shop up` runs the deadletter service under gunicorn as the broker's dead-letter sink and a
flaky subscriber behind two triggers that give up at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.integration.deadletter.topology import FLAKY_TYPE, minimal_topology
from tests.support.processes import wait_for
from tests.support.runner_manifests import write_manifests
from tests.support.shop_up import ShopUp


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShopUp]:
    root = tmp_path_factory.mktemp("deadletter")
    manifests = write_manifests(root / "manifests", minimal_topology())
    overrides: dict[str, dict[str, str]] = {}
    database = None
    if request.param == "postgresql":
        database = _PostgresDatabase(request.getfixturevalue("postgres_url"))
        overrides["deadletter"] = {"DATABASE_URL": database.url}
    try:
        with ShopUp(manifests, root / "state", env_overrides=overrides) as running:
            yield running
    finally:
        if database is not None:
            database.drop()


class _PostgresDatabase:
    """One database for a module's `shop up` (the per-test fixture would be dropped too soon)."""

    def __init__(self, server_url: str) -> None:
        self.name = f"shop_test_dl_{uuid.uuid4().hex[:10]}"
        self._admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        url = sa.make_url(server_url).set(database=self.name)
        self.url = url.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture
def flaky(shop: ShopUp) -> str:
    """The flaky sink's URL, failing with 422 at the start of each test."""
    url = shop.url("flaky")
    set_mode(url, failing=True, status=422)
    return url


def set_mode(flaky_url: str, *, failing: bool, status: int = 422) -> None:
    response = requests.put(
        f"{flaky_url}/mode", json={"failing": failing, "status": status}, timeout=5
    )
    response.raise_for_status()


def send(shop: ShopUp, event_id: str, subject: str) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/deadletter",
        "ce-type": FLAKY_TYPE,
        "ce-subject": subject,
        "Content-Type": "application/json",
    }
    response = requests.post(shop.broker_url, headers=headers, data=b'{"n": 1}', timeout=5)
    assert response.status_code == 202, response.text


def dead_letters(shop: ShopUp, **query: str) -> list[dict[str, Any]]:
    response = requests.get(f"{shop.url('deadletter')}/deadletters", params=query, timeout=5)
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["dead_letters"]
    return items


def wait_for_dead_letters(shop: ShopUp, count: int, **query: str) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found = dead_letters(shop, **query)
        return found if len(found) >= count else None

    return wait_for(enough, timeout=20, what=f"{count} dead letters for {query}")


def test_an_event_two_triggers_fail_is_kept_once_per_failed_url(shop: ShopUp, flaky: str) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    send(shop, f"e-{subject}", subject)
    found = wait_for_dead_letters(shop, 2, subject=subject)
    assert sorted(item["destination"] for item in found) == [flaky, f"{flaky}/b"]
    for item in found:
        assert item["event_id"] == f"e-{subject}" and item["type"] == FLAKY_TYPE
        assert item["error_code"] == 422
        assert item["error_data"] == "flaky sink: failing on purpose (422)"
        assert item["redelivered_at"] is None


def test_a_redelivered_dead_letter_reaches_the_healed_subscriber_with_its_id(
    shop: ShopUp, flaky: str
) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    send(shop, f"e-{subject}", subject)
    first = wait_for_dead_letters(shop, 2, subject=subject)[0]
    set_mode(flaky, failing=False)
    response = requests.post(
        f"{shop.url('deadletter')}/deadletters/{first['id']}/redeliver", timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["redelivery"]["status"] == 202
    received = wait_for(
        lambda: (
            [
                e
                for e in requests.get(f"{flaky}/received", timeout=5).json()
                if e["id"] == f"e-{subject}"
            ]
            or None
        ),
        timeout=20,
        what="the redelivered event at the flaky sink",
    )
    event = received[0]
    assert event["source"] == "/tests/deadletter" and event["subject"] == subject
    assert not [name for name in event if name.startswith("knativeerror")]
    detail = requests.get(f"{shop.url('deadletter')}/deadletters/{first['id']}", timeout=5).json()
    assert detail["redelivered_at"] is not None
    assert [attempt["outcome"] for attempt in detail["redeliveries"]] == ["accepted"]


def test_a_redelivery_that_fails_again_through_the_broker_comes_back_as_new_dead_letters(
    shop: ShopUp, flaky: str
) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    send(shop, f"e-{subject}", subject)
    first = wait_for_dead_letters(shop, 2, subject=subject)[0]
    response = requests.post(
        f"{shop.url('deadletter')}/deadletters/{first['id']}/redeliver",
        json={"to": "broker"},
        timeout=10,
    )
    assert response.status_code == 200  # the broker took it; both its triggers fail it again
    again = wait_for_dead_letters(shop, 4, subject=subject)
    assert {item["event_id"] for item in again} == {f"e-{subject}"}
    assert len({item["id"] for item in again}) == 4


def test_the_count_of_stored_dead_letters_is_a_metric(shop: ShopUp, flaky: str) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    send(shop, f"e-{subject}", subject)
    wait_for_dead_letters(shop, 2, subject=subject)
    text = requests.get(f"{shop.url('deadletter')}/metrics", timeout=5).text
    samples = [line for line in text.splitlines() if line.startswith("shop_deadletters{")]
    assert any(f'destination="{flaky}/b"' in line for line in samples), samples


def journal_entries(shop: ShopUp, event_id: str) -> list[dict[str, Any]]:
    """The broker's journal entries of `event_id` (one per time it was accepted), oldest first."""
    broker = shop.broker_url.rsplit("/", 2)[0]
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = requests.get(
            f"{broker}/_shop/events", params={"after": after, "limit": 1000}, timeout=5
        ).json()
        found += [e for e in page["events"] if e["id"] == event_id]
        if not page["events"]:
            return found
        after = page["next_after"]


def redeliver(shop: ShopUp, dead_letter_id: int, **body: str) -> dict[str, Any]:
    url = f"{shop.url('deadletter')}/deadletters/{dead_letter_id}/redeliver"
    response = requests.post(url, json=body or None, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_redelivery_to_the_subscriber_reaches_the_trigger_that_failed_it_alone(
    shop: ShopUp, flaky: str
) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    event_id = f"e-{subject}"
    send(shop, event_id, subject)
    at_b = next(
        item
        for item in wait_for_dead_letters(shop, 2, subject=subject)
        if item["destination"] == f"{flaky}/b"
    )
    # Still failing: only flaky-b is given the event, so only flaky-b fails it again.
    answer = redeliver(shop, at_b["id"])  # no body: the default, to the subscriber
    assert answer["redelivery"]["to"] == "subscriber"
    assert "/_shop/redeliver/shop/default" in answer["redelivery"]["url"]

    def finished() -> list[dict[str, Any]] | None:
        entries = journal_entries(shop, event_id)
        done = len(entries) == 2 and entries[1]["deliveries"][0]["state"] == "dead_lettered"
        return entries if done else None

    entries = wait_for(finished, timeout=20, what="the redelivery dead-lettered by flaky-b")
    assert [d["trigger"] for d in entries[1]["deliveries"]] == ["shop/flaky-b"]
    again = wait_for_dead_letters(shop, 3, subject=subject)
    assert sorted(item["destination"] for item in again) == [flaky, f"{flaky}/b", f"{flaky}/b"]


def test_a_redelivery_through_the_broker_reaches_every_trigger_again(
    shop: ShopUp, flaky: str
) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    event_id = f"e-{subject}"
    send(shop, event_id, subject)
    first = wait_for_dead_letters(shop, 2, subject=subject)[0]
    set_mode(flaky, failing=False)
    assert redeliver(shop, first["id"], to="broker")["redelivery"]["to"] == "broker"

    def both() -> list[str] | None:
        got = requests.get(f"{flaky}/received", timeout=5).json()
        paths = sorted(e["path"] for e in got if e["id"] == event_id)
        return paths if len(paths) == 2 else None

    assert wait_for(both, timeout=20, what="the event at both triggers") == ["/", "/b"]


def test_redelivery_by_filter_sends_each_matching_dead_letter_to_its_own_subscriber(
    shop: ShopUp, flaky: str
) -> None:
    subject = f"s-{uuid.uuid4().hex[:8]}"
    event_id = f"e-{subject}"
    send(shop, event_id, subject)
    wait_for_dead_letters(shop, 2, subject=subject)
    set_mode(flaky, failing=False)
    url = f"{shop.url('deadletter')}/deadletters/redeliver"
    chosen = {"filter": f"subject = '{subject}'"}
    dry = requests.post(url, json={**chosen, "dry_run": True}, timeout=10).json()
    assert dry["count"] == 2 and journal_entries(shop, event_id)[1:] == []
    done = requests.post(url, json=chosen, timeout=30)
    assert done.status_code == 200, done.text
    assert [i["redelivery"]["status"] for i in done.json()["dead_letters"]] == [202, 202]

    def delivered() -> list[dict[str, Any]] | None:
        entries = journal_entries(shop, event_id)[1:]
        states = [d["state"] for e in entries for d in e["deliveries"]]
        return entries if states == ["delivered", "delivered"] else None

    entries = wait_for(delivered, timeout=20, what="both redeliveries delivered")
    assert sorted(d["trigger"] for e in entries for d in e["deliveries"]) == [
        "shop/flaky-a",
        "shop/flaky-b",
    ]
    got = requests.get(f"{flaky}/received", timeout=5).json()
    assert sorted(e["path"] for e in got if e["id"] == event_id) == ["/", "/b"]
    assert dead_letters(shop, subject=subject, state="pending") == []
