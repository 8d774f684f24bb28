"""A reply loop: a subscriber that answers every event with one of the type it consumes.

Each seed event comes back 254 times; the broker's hop counter (`knativebrokerttl`) ends every
loop, the last event goes to the dead-letter sink with the reason, and the loop is visible in the
viewer, the dead letters and the broker's metrics. Nothing else in the shop is held up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.faults.account import count_deliveries, wait_settled
from tests.faults.conftest import fault_manifests
from tests.support.events import binary_request
from tests.support.runner_manifests import echo_service, trigger_manifest, write_manifests
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

SEEDS = 4
HOPS = 255  # the first ingress sets the counter to 255; each reply takes one off; 0 is refused
LOOP_TYPE = "test.loop"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    root = tmp_path_factory.mktemp("loop-faults")
    manifests = fault_manifests(root / "manifests", {})
    write_manifests(
        manifests,
        [
            echo_service("looper", args=["--reply"]),
            trigger_manifest("looper", "looper", filter={"attributes": {"type": LOOP_TYPE}}),
        ],
        name="95-reply-loop.yaml",
    )
    # The viewer keeps 1,000 events by default; these loops alone make more.
    env = {"viewer": {"VIEWER_HISTORY": "5000"}}
    with ShopUp(manifests, root / "state", env_overrides=env) as running:
        yield running


def test_a_reply_loop_is_ended_by_the_ttl_and_shows_in_the_viewer_and_metrics(
    shop: ShopUp, account: Any
) -> None:
    client = ShopClient(shop.endpoints)
    mark = client.journal_mark()
    subjects = [f"loop-{n}" for n in range(SEEDS)]
    for subject in subjects:
        headers, body = binary_request(LOOP_TYPE, {"hop": 0}, subject=subject)
        answer = requests.post(shop.broker_url, headers=headers, data=body, timeout=10)
        assert answer.status_code == 202, answer.text

    def loops_ended(events: list[dict[str, Any]]) -> str | None:
        return None if len(events) >= SEEDS * HOPS else f"{len(events)} loop events so far"

    events, _ = wait_settled(
        client,
        mark,
        lambda event: event["type"] == LOOP_TYPE,
        timeout=120,
        done=loops_ended,
    )
    result = account("reply loop (TTL)", f"{SEEDS} seeds, {SEEDS * HOPS} events")
    count_deliveries(result, events)
    result.assert_exact()
    assert result.accepted == SEEDS * HOPS
    # Each loop's last event: its reply was refused for the TTL, so it was dead-lettered.
    assert result.dead_lettered == SEEDS
    for subject in subjects:
        [dead] = client.dead_letters(subject)
        assert "knativebrokerttl" in str(dead), dead
        seen = client.timeline(subject)
        assert len(seen) == HOPS, f"the viewer shows {len(seen)} events of {subject}"
    metrics = requests.get(f"{client.broker_root}/metrics", timeout=10).text
    [dead_lettered] = re.findall(
        r'^shop_broker_events_dead_lettered_total\{[^}]*trigger="shop/looper"[^}]*\} (\S+)$',
        metrics,
        re.M,
    )
    assert float(dead_lettered) == SEEDS
    result.notes.append(f"each loop dead-lettered once at its last hop; viewer showed {HOPS} each")
