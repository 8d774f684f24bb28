"""What the viewer's page shows, as a browser draws it: absent values, hidden selections, the
first paint, the ID column at 1400 px and the list at 420 px."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from playwright.sync_api import Route, expect

from tests.browser.conftest import ViewerPage
from tests.support.processes import wait_for
from tests.support.shop_up import ShopUp

UUID_LENGTH = 36


def send(shop: ShopUp, event_type: str, subject: str | None = None) -> str:
    """Post an event straight to the broker; its id."""
    event_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/browser/a-rather-long-source-name",
        "ce-type": event_type,
        "Content-Type": "application/json",
    }
    if subject is not None:
        headers["ce-subject"] = subject
    response = requests.post(shop.broker_url, headers=headers, data=b'{"n": 1}', timeout=5)
    assert response.status_code == 202, response.text
    return event_id


def viewer_delivery_done(shop: ShopUp, event_id: str) -> bool:
    journal = shop.broker_url.rsplit("/shop/", 1)[0] + "/_shop/events"
    last = requests.get(journal, params={"limit": "1"}, timeout=5).json()["last_seq"] or 0
    page = requests.get(journal, params={"after": max(0, last - 100), "limit": 100}, timeout=5)
    event = next(e for e in page.json()["events"] if e["id"] == event_id)
    states = {d["trigger"]: d["state"] for d in event["deliveries"]}
    return states.get("shop/viewer-all-events") == "delivered"


def test_an_event_without_a_subject_shows_a_dash_not_null(viewer: ViewerPage, shop: ShopUp) -> None:
    event_id = send(shop, "browser.unsubjected")
    page = viewer.open()
    row = page.locator(f"#event-rows tr[data-id='{event_id}']")
    expect(row.locator("td.c-subject")).to_have_text("—")
    row.click()
    detail = page.locator("#event-detail")
    expect(detail.locator("#detail-id")).to_have_text(event_id)
    texts = [row.inner_text(), detail.inner_text()]
    assert not any(word in text for text in texts for word in ("null", "undefined")), texts
    wait_for(  # the broker records the viewer's answer a moment after the page has the event
        lambda: viewer_delivery_done(shop, event_id) or None,
        timeout=10,
        what=f"the broker's record of {event_id} delivered to the viewer",
    )
    page.click("#detail-deliveries")
    viewers = detail.locator(".delivery[data-trigger='shop/viewer-all-events']")
    expect(viewers).to_have_attribute("data-state", "delivered")
    viewer.screenshot("no-subject")


def test_a_filter_that_hides_the_shown_event_clears_the_detail_pane(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    marker = uuid.uuid4().hex[:8]
    hidden = send(shop, "browser.to-hide", subject=marker)
    send(shop, "browser.to-keep", subject=marker)
    page = viewer.open()
    page.locator(f"#event-rows tr[data-id='{hidden}']").click()
    expect(page.locator("#event-detail #detail-id")).to_have_text(hidden)
    page.fill("#filter", f"subject = '{marker}' AND type = 'browser.to-keep'")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#event-rows tr")).to_have_count(1)
    expect(page.locator("#event-detail #detail-hidden")).to_contain_text("hidden")
    expect(page.locator("#event-detail")).not_to_contain_text(hidden)
    viewer.screenshot("hidden-by-filter")


def test_the_id_column_is_whole_at_1400_px(viewer: ViewerPage, shop: ShopUp) -> None:
    subject = str(uuid.uuid4())  # a saga's subject: as long as an id
    ids = [send(shop, "notification.something-long", subject=subject) for _ in range(3)]
    page = viewer.open()
    page.set_viewport_size({"width": 1400, "height": 900})
    for event_id in ids:
        cell = page.locator(f"#event-rows tr[data-id='{event_id}'] td.c-id")
        expect(cell).to_have_attribute("title", event_id)
        box = cell.evaluate(
            """cell => {
                const pane = cell.closest('.list-pane').getBoundingClientRect();
                const box = cell.getBoundingClientRect();
                return {scroll: cell.scrollWidth, client: cell.clientWidth, text: cell.innerText,
                        right: box.right, paneRight: pane.right};
            }"""
        )
        assert box["text"] == event_id and len(event_id) == UUID_LENGTH
        assert box["scroll"] <= box["client"], f"the id does not fit its cell: {box}"
        assert box["right"] <= box["paneRight"] + 0.5, f"the id cell is outside the list: {box}"
    page.locator(f"#event-rows tr[data-id='{ids[0]}']").click()
    expect(page.locator("#event-detail #detail-id")).to_have_text(ids[0])
    viewer.screenshot("ids-at-1400")


def test_the_list_stays_usable_at_420_px(viewer: ViewerPage, shop: ShopUp) -> None:
    event_id = send(shop, "browser.narrow", subject="narrow-screen")
    page = viewer.page
    page.set_viewport_size({"width": 420, "height": 860})
    viewer.open()
    row = page.locator(f"#event-rows tr[data-id='{event_id}']")
    expect(row).to_be_visible()
    size = row.bounding_box()
    assert size is not None and size["width"] > 300 and size["height"] > 20, size
    chip = row.locator(".type-chip")
    expect(chip).to_be_visible()
    expect(chip).to_have_text("browser.narrow")
    chip_box = chip.bounding_box()
    assert chip_box is not None and chip_box["x"] + chip_box["width"] <= 420, chip_box
    for cell in ("td.c-received", "td.c-id"):
        box = row.locator(cell).bounding_box()
        assert box is not None and box["width"] > 0 and box["x"] + box["width"] <= 420, (cell, box)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, f"the page scrolls sideways: {width} px wide"
    row.click()
    expect(page.locator("#event-detail #detail-id")).to_have_text(event_id)
    expect(page.locator(".tabs button[data-tab=deadletters]")).to_be_attached()
    viewer.screenshot("narrow-420")


def test_the_first_paint_says_connecting_until_the_history_answers(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    send(shop, "browser.before-the-page")
    page = viewer.page
    held: list[Route] = []

    def hold(route: Route, request: Any) -> None:
        held.append(route)

    page.route("**/api/events*", hold)
    page.goto(f"{viewer.origin}/#events")
    empty = page.locator("#events-empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("Connecting")
    expect(empty).not_to_contain_text("No events")
    expect(page.locator("#event-rows tr")).to_have_count(0)
    viewer.screenshot("connecting")
    for _ in range(100):  # the route handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page did not ask for the history"
    for route in held:
        route.continue_()
    page.unroute("**/api/events*")
    expect(page.locator("#event-rows tr").first).to_be_visible()
    expect(empty).to_be_hidden()
    page.wait_for_selector("#connection.pill-live")
    viewer.screenshot("connected")
