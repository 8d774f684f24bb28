"""The viewer in a real browser against `shop up`: send, watch, follow an order, redeliver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ViewerPage
from tests.integration.deadletter.topology import FLAKY_TYPE
from tests.support.events import wire_event
from tests.support.processes import ServedApp, wait_for
from tests.support.shop_up import ShopUp
from wire.http_binding import to_binary


def test_an_event_sent_from_the_form_arrives_in_the_live_list(viewer: ViewerPage) -> None:
    page = viewer.open()
    subject = f"form-{uuid.uuid4().hex[:6]}"
    viewer.tab("send")
    page.fill("#send-form input[name=type]", "browser.hello")
    page.fill("#send-form input[name=subject]", subject)
    page.fill("#send-form textarea[name=extensions]", "partitionkey=p-1")
    page.fill("#send-form textarea[name=data]", '{"greeting": "hello from the form", "n": 7}')
    page.check("#send-form input[name=mode][value=structured]")
    page.click("#send-form button[type=submit]")
    expect(page.locator("#send-result")).to_contain_text("202 from the broker (structured mode)")
    viewer.screenshot("sent")

    viewer.tab("events")
    row = page.locator("#event-rows tr[data-type='browser.hello']").first
    expect(row).to_contain_text(subject)
    row.click()
    detail = page.locator("#event-detail")
    expect(detail).to_contain_text("partitionkey")
    data = json.loads(page.locator("#event-data").inner_text())
    assert data == {"greeting": "hello from the form", "n": 7}
    viewer.screenshot("arrived")


def test_the_filter_box_shows_only_matching_events_and_explains_a_bad_filter(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    marker = uuid.uuid4().hex[:6]
    for event_type in ("browser.kept", "browser.dropped"):
        _send(shop, event_type, subject=marker)
    page = viewer.open()
    page.fill("#filter", f"subject = '{marker}' AND type LIKE '%.kept'")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#event-rows tr")).to_have_count(1)
    expect(page.locator("#event-rows tr").first).to_have_attribute("data-type", "browser.kept")
    _send(shop, "browser.kept", subject=marker)  # a live one, filtered on the server too
    _send(shop, "browser.dropped", subject=marker)
    expect(page.locator("#event-rows tr")).to_have_count(2)
    viewer.screenshot("filtered")

    viewer.expect_error("status of 400")
    page.fill("#filter", "type =")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#filter-error")).to_contain_text("CESQL")
    expect(page.locator("#event-rows tr")).to_have_count(2)
    viewer.screenshot("bad-filter")


def test_a_placed_orders_timeline_completes(viewer: ViewerPage, shop: ShopUp) -> None:
    user = requests.post(
        f"{shop.url('customer')}/users",
        json={"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:6]}@example.com"},
        timeout=5,
    )
    assert user.status_code == 201, user.text
    sku = f"tea-{uuid.uuid4().hex[:6]}"
    stocked = requests.put(f"{shop.url('inventory')}/stock/{sku}", json={"available": 5}, timeout=5)
    assert stocked.status_code in (200, 201), stocked.text
    order = requests.post(
        f"{shop.url('order')}/orders",
        json={
            "customer_id": user.json()["id"],
            "lines": [{"sku": sku, "quantity": 2, "unit_price": 450}],
            "currency": "EUR",
            "payment_token": "tok_ok",
        },
        timeout=5,
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]

    page = viewer.open("timeline")
    page.fill("#timeline-subject", order_id)
    page.click("#timeline-form button[type=submit]")
    steps = page.locator("#timeline .step")
    # The timeline refreshes as events arrive, until the saga is done and the customer mailed.
    expect(page.locator("#timeline .step[data-type='notification.sent']")).to_have_count(1)
    types = steps.evaluate_all("steps => steps.map(step => step.dataset.type)")
    assert types[0] == "order.created"
    assert {"inventory.reserved", "payment.authorized", "order.confirmed"} <= set(types)
    assert types.index("order.confirmed") < types.index("notification.sent")
    expect(page.locator("#timeline-summary")).to_contain_text(f"{len(types)} events over")
    viewer.screenshot("timeline")


def test_a_dead_letter_is_shown_and_redelivered_from_the_page(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    flaky = shop.url("flaky")
    _flaky_mode(flaky, failing=True)
    event_id = f"flaky-{uuid.uuid4().hex[:8]}"
    _send(shop, FLAKY_TYPE, subject="dead-letter-demo", event_id=event_id)

    page = viewer.open("deadletters")
    rows = page.locator(f"#dead-letter-rows tr[data-event-id='{event_id}']")
    expect(rows).to_have_count(2, timeout=20_000)  # two triggers failed it: two dead letters
    expect(rows.first).to_contain_text("flaky sink: failing on purpose")
    expect(rows.first).to_contain_text("pending")
    viewer.screenshot("dead-letters")

    _flaky_mode(flaky, failing=False)
    message = page.locator("#dead-letters-message")
    # One dead letter straight back to the subscriber that failed it: only that Trigger's URL.
    only = rows.filter(has_text="/b").first
    only.locator("button", has_text="Redeliver").click()
    viewer.screenshot("redeliver-choices")
    only.locator("button[data-to=subscriber]", has_text="to the subscriber only").click()
    expect(message).to_contain_text("redelivered to the subscriber")
    expect(message).to_have_attribute("data-to", "subscriber")
    wait_for(
        lambda: [e["path"] for e in _received(flaky) if e["id"] == event_id] or None,
        timeout=20,
        what=f"{event_id} at the healed sink",
    )
    assert [e["path"] for e in _received(flaky) if e["id"] == event_id] == ["/b"]
    # The other through the broker: every Trigger that matches gets it again.
    pending = page.locator(
        f"#dead-letter-rows tr[data-event-id='{event_id}'][data-state='pending']"
    )
    expect(pending).to_have_count(1)
    pending.locator("button", has_text="Redeliver").click()
    pending.locator("button[data-to=broker]", has_text="through the broker").click()
    expect(message).to_contain_text("redelivered through the broker: the broker answered 202")
    expect(
        page.locator(f"#dead-letter-rows tr[data-event-id='{event_id}'][data-state='redelivered']")
    ).to_have_count(2)
    wait_for(
        lambda: len([e for e in _received(flaky) if e["id"] == event_id]) == 3 or None,
        timeout=20,
        what=f"{event_id} at both of the sink's Triggers after the broker redelivery",
    )
    viewer.screenshot("redelivered")


def test_the_topology_is_drawn_as_a_graph(viewer: ViewerPage) -> None:
    page = viewer.open("topology")
    graph = page.locator("#topology-graph svg")
    expect(graph).to_be_visible()
    for service in ("inventory", "payment", "order", "notification", "viewer", "deadletter"):
        expect(graph.locator(f"g.node[data-name='{service}']")).to_have_count(1)
    expect(page.locator("#topology-rows tr")).to_have_count(13)
    expect(page.locator("#topology-rows")).to_contain_text("payment-order-created")
    viewer.screenshot("topology")


def test_the_page_loads_nothing_from_anywhere_but_the_viewer(viewer: ViewerPage) -> None:
    page = viewer.open()
    for tab in ("timeline", "send", "topology", "deadletters", "trace", "events"):
        viewer.tab(tab)
    page.wait_for_load_state("networkidle")
    foreign = [url for url in viewer.requested if not url.startswith((viewer.origin, "data:"))]
    assert not foreign, foreign
    assert any(url.endswith("/assets/viewer.js") for url in viewer.requested)


def _send(shop: ShopUp, event_type: str, *, subject: str, event_id: str | None = None) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-source": "/tests/browser",
        "ce-type": event_type,
        "ce-subject": subject,
        "Content-Type": "application/json",
    }
    response = requests.post(shop.broker_url, headers=headers, data=b'{"n": 1}', timeout=5)
    assert response.status_code == 202, response.text


def _flaky_mode(flaky_url: str, *, failing: bool) -> None:
    requests.put(f"{flaky_url}/mode", json={"failing": failing}, timeout=5).raise_for_status()


def _received(flaky_url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = requests.get(f"{flaky_url}/received", timeout=5).json()
    return received


def test_the_page_says_when_the_history_dropped_old_events(
    browser: BrowserContext, tmp_path: Path
) -> None:
    """A viewer of its own with room for three events, so that it has to drop some."""
    small = ServedApp(
        "services.viewer.app:create_app()",
        tmp_path / "viewer.log",
        env={"VIEWER_HISTORY": "3", "LOG_LEVEL": "WARNING"},
    ).start()
    try:
        for number in range(5):
            headers, body = to_binary(wire_event("browser.numbered", {"n": number}))
            assert requests.post(small.url, headers=headers, data=body, timeout=5).ok
        page = browser.new_page()
        viewer = ViewerPage(page, small.url, "history-dropped")
        viewer.open()
        expect(page.locator("#event-rows tr")).to_have_count(3)
        expect(page.locator("#buffer")).to_have_text(
            "3 of 3 kept · 2 older dropped (keeps the last 3)"
        )
        headers, body = to_binary(wire_event("browser.numbered", {"n": 5}))
        requests.post(small.url, headers=headers, data=body, timeout=5)
        expect(page.locator("#buffer")).to_contain_text("3 older dropped")
        viewer.screenshot("dropped")
        page.close()
        assert not viewer.unexpected_errors()
    finally:
        small.stop()
