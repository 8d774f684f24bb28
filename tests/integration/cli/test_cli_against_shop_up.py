"""`shop send`, `tail`, `deadletters` and `status` against a real `shop up` of the chart."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import requests

from tests.integration.cli.conftest import run_shop
from tests.support.processes import wait_for
from tests.support.shop_up import REPO_ROOT, ShopUp


def viewer_events(shop: ShopUp, **query: str) -> list[dict[str, Any]]:
    response = requests.get(f"{shop.url('viewer')}/api/events", params=query, timeout=5)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def seen_by_viewer(shop: ShopUp, event_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: next((e for e in viewer_events(shop) if e["id"] == event_id), None),
        timeout=15,
        what=f"event {event_id} at the viewer",
    )


def test_send_posts_to_the_local_broker_and_prints_its_answer(shop: ShopUp) -> None:
    event_id = f"cli-{uuid.uuid4().hex[:8]}"
    ran = run_shop(
        shop,
        "send",
        "--type",
        "cli.hello",
        "--id",
        event_id,
        "--subject",
        "s-1",
        "--field",
        "greeting=hi",
        "--field",
        "count.n=3",
        "--extension",
        "partitionkey=k1",
    )
    assert ran.code == 0, ran.err
    assert ran.out.startswith("202 Accepted") and event_id in ran.out
    assert shop.broker_url in ran.out
    event = seen_by_viewer(shop, event_id)
    assert event["data"] == {"greeting": "hi", "count": {"n": 3}}
    assert event["source"] == "/shop/cli" and event["extensions"]["partitionkey"] == "k1"


def test_send_in_structured_mode_arrives_the_same(shop: ShopUp) -> None:
    event_id = f"cli-{uuid.uuid4().hex[:8]}"
    ran = run_shop(
        shop,
        "send",
        "--type",
        "cli.structured",
        "--id",
        event_id,
        "--data",
        "[1, 2]",
        "--structured",
    )
    assert ran.code == 0 and "(structured)" in ran.out
    assert seen_by_viewer(shop, event_id)["data"] == [1, 2]


def test_send_exits_1_when_the_broker_refuses(shop: ShopUp) -> None:
    unknown_broker = shop.broker_url.rsplit("/", 1)[0] + "/no-such-broker"
    ran = run_shop(shop, "send", "--type", "cli.lost", "--to", unknown_broker)
    assert ran.code == 1
    assert ran.out.startswith("404 Not Found")


def test_send_refuses_an_invalid_event_before_posting(shop: ShopUp) -> None:
    ran = run_shop(shop, "send", "--type", "x", "--extension", "Not-Valid=1")
    assert ran.code == 2 and "Not-Valid" in ran.err
    ran = run_shop(shop, "send", "--type", "x", "--data", "{not json")
    assert ran.code == 2 and "--data" in ran.err


def test_tail_follows_the_live_events_that_match_its_filter(shop: ShopUp) -> None:
    marker = uuid.uuid4().hex[:8]
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shop.cli",
            "tail",
            "--count",
            "1",
            "--filter",
            f"type = 'cli.tail' AND subject = '{marker}'",
            "--state-dir",
            str(shop.state_dir),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Send until the stream is open: an event before it is not history tail asked for.
        def printed() -> bool:
            run_shop(shop, "send", "--type", "cli.other", "--subject", marker)
            run_shop(shop, "send", "--type", "cli.tail", "--subject", marker)
            return tail.poll() is not None

        wait_for(printed, timeout=30, interval=0.2, what="shop tail to print one event")
        out, err = tail.communicate(timeout=10)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    (line,) = out.splitlines()
    assert "cli.tail" in line and f"subject={marker}" in line and "/shop/cli" in line


def test_tail_with_history_prints_what_the_viewer_holds_as_json(shop: ShopUp) -> None:
    event_id = f"cli-{uuid.uuid4().hex[:8]}"
    run_shop(shop, "send", "--type", "cli.history", "--id", event_id)
    seen_by_viewer(shop, event_id)
    ran = run_shop(
        shop, "tail", "--history", "--json", "--count", "1", "--filter", f"id = '{event_id}'"
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["id"] == event_id


def test_tail_refuses_a_filter_the_broker_would_refuse(shop: ShopUp) -> None:
    ran = run_shop(shop, "tail", "--filter", "type =", timeout=20)
    assert ran.code == 2 and "refused the filter" in ran.err


def test_deadletters_lists_shows_redelivers_and_deletes(shop: ShopUp) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    # Data that breaks order.created's schema: inventory and payment answer 400 (not retried).
    sent = run_shop(
        shop, "send", "--type", "order.created", "--subject", order, "--field", "bad=true"
    )
    assert sent.code == 0

    def listed() -> str | None:
        ran = run_shop(shop, "deadletters", "list", "--subject", order)
        return ran.out if ran.out.count(order) == 2 else None

    table = wait_for(listed, timeout=30, interval=0.2, what="two dead letters in the list")
    assert "inventory (http://" in table and "payment (http://" in table
    assert " 400 " in table and "pending" in table
    as_json = json.loads(run_shop(shop, "deadletters", "--subject", order, "--json").out)
    first = as_json["dead_letters"][0]["id"]

    shown = run_shop(shop, "deadletters", "show", str(first))
    assert shown.code == 0 and "does not match its schema" in shown.out
    assert '"bad": true' in shown.out

    redelivered = run_shop(shop, "deadletters", "redeliver", str(first))
    assert redelivered.code == 0, redelivered.out + redelivered.err
    assert "answered 202" in redelivered.out

    deleted = run_shop(shop, "deadletters", "delete", str(first))
    assert deleted.code == 0
    missing = run_shop(shop, "deadletters", "show", str(first))
    assert missing.code == 1 and f"no dead letter {first}" in missing.err


def test_deadletters_filters_by_service_name_and_time(shop: ShopUp) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    run_shop(shop, "send", "--type", "order.created", "--subject", order, "--field", "bad=1")
    wait_for(
        lambda: run_shop(shop, "deadletters", "--subject", order).out.count(order) == 2,
        timeout=30,
        interval=0.2,
        what="two dead letters",
    )
    only_payment = run_shop(
        shop, "deadletters", "--subject", order, "--destination", "payment", "--since", "10m"
    )
    assert only_payment.out.count(order) == 1 and "payment (" in only_payment.out
    none_yet = run_shop(shop, "deadletters", "--subject", order, "--until", "1h")
    assert none_yet.out.startswith("no dead letters")


def test_deadletters_through_the_viewers_pass_through(shop: ShopUp) -> None:
    """In a cluster the deadletter service is cluster-local; the public viewer passes it on."""
    order = f"o-{uuid.uuid4().hex[:8]}"
    run_shop(shop, "send", "--type", "order.created", "--subject", order, "--field", "bad=1")
    via_viewer = ["deadletters", "--url", f"{shop.url('viewer')}/api", "--subject", order]
    wait_for(
        lambda: run_shop(None, *via_viewer).out.count(order) == 2,
        timeout=30,
        interval=0.2,
        what="two dead letters through the viewer",
    )


def broker_journal(shop: ShopUp, event_id: str) -> list[dict[str, Any]]:
    """The local broker's journal entries of `event_id`, oldest first."""
    admin = shop.broker_url.rsplit("/", 2)[0]
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = requests.get(
            f"{admin}/_shop/events", params={"after": after, "limit": 1000}, timeout=5
        ).json()
        found += [e for e in page["events"] if e["id"] == event_id]
        if not page["events"]:
            return found
        after = page["next_after"]


def test_replay_sends_a_journaled_event_again_with_its_id(shop: ShopUp) -> None:
    event_id = f"cli-{uuid.uuid4().hex[:8]}"
    run_shop(shop, "send", "--type", "cli.replay", "--id", event_id)
    seen_by_viewer(shop, event_id)
    chosen = ["--filter", f"id = '{event_id}'"]
    listed = run_shop(shop, "replay", "--dry-run", *chosen)
    assert listed.code == 0, listed.err
    assert event_id in listed.out and "shop/viewer" in listed.out
    assert "1 events would go" in listed.out
    sent = run_shop(shop, "replay", *chosen)
    assert sent.code == 0, sent.err
    assert "1 of 1 events sent again" in sent.out
    wait_for(
        lambda: next(e for e in viewer_events(shop) if e["id"] == event_id)["deliveries"] == 2,
        timeout=15,
        what="the viewer to get the event a second time (same id)",
    )


def test_deadletters_redeliver_by_filter_sends_each_to_the_subscriber_that_failed_it(
    shop: ShopUp,
) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    event_id = f"cli-{order}"
    run_shop(
        shop,
        "send",
        "--type",
        "order.created",
        "--id",
        event_id,
        "--subject",
        order,
        "--field",
        "bad=1",
    )
    wait_for(
        lambda: run_shop(shop, "deadletters", "--subject", order).out.count(order) == 2,
        timeout=30,
        interval=0.2,
        what="two dead letters",
    )
    chosen = ["--filter", f"subject = '{order}'"]
    listed = run_shop(shop, "deadletters", "redeliver", *chosen, "--dry-run")
    assert listed.code == 0, listed.err
    assert listed.out.count(order) == 2 and "pending" in listed.out
    sent = run_shop(shop, "deadletters", "redeliver", *chosen)
    assert sent.code == 0, sent.out + sent.err
    assert "2 dead letters redelivered to the subscriber" in sent.out

    def finished() -> list[dict[str, Any]] | None:
        again = broker_journal(shop, event_id)[1:]
        states = [d["state"] for entry in again for d in entry["deliveries"]]
        return again if len(again) == 2 and "pending" not in states else None

    # Each went to the one Trigger that failed it (and fails it again), not to the other.
    again = wait_for(finished, timeout=30, what="both redeliveries finished")
    assert sorted(d["trigger"] for e in again for d in e["deliveries"]) == [
        "shop/inventory-order-created",
        "shop/payment-order-created",
    ]


def test_status_reports_the_local_shop_ready_with_its_dead_letters(shop: ShopUp) -> None:
    ran = run_shop(shop, "status", "--local", "--manifests", str(shop.manifests_dir))
    assert ran.code == 0, ran.out + ran.err
    assert "local (shop up" in ran.out
    for name in ("order", "payment", "inventory", "notification", "viewer", "deadletter"):
        assert f"\n  {name} " in ran.out
    assert "viewer-all-events" in ran.out and "order.created" in ran.out
    assert "stored" in ran.out
    assert "everything is ready" in ran.out


def test_topology_prints_the_graph_shop_up_runs(shop: ShopUp) -> None:
    ran = run_shop(None, "topology", "--manifests", str(shop.manifests_dir))
    assert ran.code == 0
    assert "flaky-b" in ran.out and "-> flaky/b" in ran.out
