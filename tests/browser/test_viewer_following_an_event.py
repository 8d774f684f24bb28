"""Following an event on the viewer's page: which Triggers got it and how each delivery went,
its trace as a waterfall, a catalog type as the Send tab's template, the catalog page."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from playwright.sync_api import expect

from catalog import load_catalog
from tests.browser.conftest import ViewerPage
from tests.integration.deadletter.topology import FLAKY_TYPE
from tests.support.processes import wait_for
from tests.support.shop_up import ShopUp

MS = 1_000_000  # nanoseconds


def broker_origin(shop: ShopUp) -> str:
    return shop.broker_url.rsplit("/shop/", 1)[0]


@pytest.fixture
def takes_spans(shop: ShopUp) -> str:
    """The broker's OTLP/HTTP endpoint (shop/broker/otlp.py), which takes the services' spans."""
    url = f"{broker_origin(shop)}/v1/traces"
    probe = requests.post(
        url, data=b"", headers={"Content-Type": "application/x-protobuf"}, timeout=5
    )
    assert probe.status_code == 200, f"the broker takes no OTLP at {url}: {probe.status_code}"
    return url


def place_order(shop: ShopUp) -> str:
    user = requests.post(
        f"{shop.url('customer')}/users",
        json={"name": "Grace", "email": f"grace-{uuid.uuid4().hex[:6]}@example.com"},
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
            "lines": [{"sku": sku, "quantity": 1, "unit_price": 300}],
            "currency": "EUR",
            "payment_token": "tok_ok",
        },
        timeout=5,
    )
    assert order.status_code == 201, order.text
    order_id: str = order.json()["id"]
    return order_id


def journal_entry(shop: ShopUp, event_id: str) -> dict[str, Any]:
    """The broker journal's summary of the event with this id (its seq, its deliveries)."""
    last = requests.get(f"{broker_origin(shop)}/_shop/events?limit=1", timeout=5).json()
    after = max(0, int(last["last_seq"] or 0) - 1000)
    page = requests.get(f"{broker_origin(shop)}/_shop/events?after={after}&limit=1000", timeout=5)
    entry: dict[str, Any] = next(e for e in page.json()["events"] if e["id"] == event_id)
    return entry


def journal_seq(shop: ShopUp, event_id: str) -> int:
    return int(journal_entry(shop, event_id)["seq"])


def journal_states(shop: ShopUp, event_id: str) -> dict[str, str]:
    return {d["trigger"]: d["state"] for d in journal_entry(shop, event_id)["deliveries"]}


def open_timeline(viewer: ViewerPage, subject: str, last_type: str) -> None:
    page = viewer.open("timeline")
    page.fill("#timeline-subject", subject)
    page.click("#timeline-form button[type=submit]")
    expect(page.locator(f"#timeline .step[data-type='{last_type}']")).to_have_count(1)


def test_a_timeline_step_shows_each_triggers_delivery(viewer: ViewerPage, shop: ShopUp) -> None:
    order_id = place_order(shop)
    open_timeline(viewer, order_id, "notification.sent")
    page = viewer.page
    page.locator("#timeline .step[data-type='order.created']").click()
    expect(page.locator("#timeline .step.selected")).to_have_attribute("data-type", "order.created")
    rows = page.locator("#step-deliveries .delivery")
    expect(rows).to_have_count(3)  # inventory, payment and the viewer's own Trigger
    triggers = rows.evaluate_all("rows => rows.map(row => row.dataset.trigger)")
    assert set(triggers) == {
        "shop/inventory-order-created",
        "shop/payment-order-created",
        "shop/viewer-all-events",
    }
    for row in rows.all():
        expect(row).to_have_attribute("data-state", "delivered")
        expect(row.locator(".attempt")).to_have_count(1)
        expect(row.locator(".attempt")).to_contain_text("ms")
    expect(rows.filter(has_text="inventory-order-created").locator(".attempt")).to_contain_text(
        "200"
    )
    viewer.screenshot("step-deliveries")


def test_a_dead_lettered_delivery_is_marked_with_its_failed_attempts(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    flaky = shop.url("flaky")
    requests.put(f"{flaky}/mode", json={"failing": True}, timeout=5).raise_for_status()
    subject = f"doomed-{uuid.uuid4().hex[:6]}"
    event_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/browser",
        "ce-type": FLAKY_TYPE,
        "ce-subject": subject,
        "Content-Type": "application/json",
    }
    assert requests.post(shop.broker_url, headers=headers, data=b"{}", timeout=5).ok
    try:
        wait_for(
            lambda: journal_states(shop, event_id).get("shop/flaky-a") == "dead_lettered" or None,
            timeout=20,
            what="flaky-a's delivery to be dead-lettered",
        )
    finally:
        requests.put(f"{flaky}/mode", json={"failing": False}, timeout=5).raise_for_status()
    open_timeline(viewer, subject, FLAKY_TYPE)
    page = viewer.page
    page.locator("#timeline .step").first.click()
    dead = page.locator("#step-deliveries .delivery[data-trigger='shop/flaky-a']")
    expect(dead).to_have_attribute("data-state", "dead_lettered")
    expect(dead).to_contain_text("dead-lettered")
    expect(dead.locator(".attempt").first).to_contain_text(re.compile(r"^[45]\d\d "))
    expect(dead.locator(".attempt-error").first).to_be_visible()
    viewer.screenshot("dead-lettered-delivery")


def test_a_catalog_type_fills_the_send_form_with_its_example(
    viewer: ViewerPage, shop: ShopUp
) -> None:
    page = viewer.open("send")
    entry = load_catalog()["notification.sent"]
    page.select_option("#send-template", "notification.sent")
    form = page.locator("#send-form")
    expect(form.locator("input[name=type]")).to_have_value("notification.sent")
    expect(form.locator("input[name=source]")).to_have_value("/shop/notification")
    expect(form.locator("input[name=dataschema]")).to_have_value(entry.schema_uri)
    expect(form.locator("input[name=datacontenttype]")).to_have_value("application/json")
    assert json.loads(form.locator("textarea[name=data]").input_value()) == entry.examples[0]
    expect(page.locator("#send-template-description")).to_have_text(entry.description)
    subject = f"template-{uuid.uuid4().hex[:6]}"
    page.fill("#send-form input[name=subject]", subject)
    page.click("#send-form button[type=submit]")
    expect(page.locator("#send-result")).to_contain_text("202 from the broker")
    viewer.screenshot("send-from-catalog")

    viewer.tab("events")
    row = page.locator("#event-rows tr[data-type='notification.sent']", has_text=subject)
    row.click()
    attributes = page.locator("#event-detail .kv").first
    expect(attributes).to_contain_text(entry.schema_uri)
    expect(attributes).to_contain_text("/shop/notification")
    assert json.loads(page.locator("#event-data").inner_text()) == entry.examples[0]


def test_the_header_links_to_the_catalog_page(viewer: ViewerPage) -> None:
    page = viewer.open()
    link = page.locator(".top a#catalog-link")
    expect(link).to_have_text("Catalog")
    expect(link).to_have_attribute("href", "/catalog")
    with page.context.expect_page() as opened:
        link.click()
    catalog = opened.value
    catalog.wait_for_load_state()
    assert catalog.url == f"{viewer.origin}/catalog"
    expect(catalog.locator("body")).to_contain_text("order.created")
    catalog.close()


@pytest.fixture
def tracer(takes_spans: str) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=takes_spans)))
    yield provider
    provider.shutdown()


def post_trace(provider: TracerProvider, event_seq: int) -> dict[str, Any]:
    """Three spans of one trace, exported over OTLP: a root, a failed child and a delivery
    attempt under it that was dead-lettered; their ids and the root's start."""
    tracer = provider.get_tracer("tests.browser")
    start = 1_700_000_000_000 * MS
    root = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=start)
    inside = set_span_in_context(root)
    child = tracer.start_span(
        "reserve stock", context=inside, kind=SpanKind.CLIENT, start_time=start + 10 * MS
    )
    child.set_status(Status(StatusCode.ERROR, "out of stock"))
    delivery = tracer.start_span(
        "shop/payment-order-created deliver",
        context=set_span_in_context(child),
        kind=SpanKind.PRODUCER,
        start_time=start + 20 * MS,
        attributes={
            "shop.trigger": "shop/payment-order-created",
            "shop.delivery.attempt": 2,
            "http.response.status_code": 503,
            "shop.dead_lettered": True,
            "shop.event.seq": event_seq,
        },
    )
    delivery.end(end_time=start + 60 * MS)
    child.end(end_time=start + 70 * MS)
    root.set_status(Status(StatusCode.OK))
    root.end(end_time=start + 100 * MS)
    assert provider.force_flush()
    ids = {
        name: format(span.get_span_context().span_id, "016x")
        for name, span in (("root", root), ("child", child), ("delivery", delivery))
    }
    return {"trace_id": format(root.get_span_context().trace_id, "032x"), **ids}


def test_a_trace_is_drawn_as_a_waterfall_of_its_spans(
    viewer: ViewerPage, shop: ShopUp, tracer: TracerProvider
) -> None:
    order_id = place_order(shop)
    page = viewer.open()
    created = page.locator("#event-rows tr[data-type='order.created']", has_text=order_id)
    event_id = created.get_attribute("data-id")
    assert event_id is not None
    posted = post_trace(tracer, journal_seq(shop, event_id))
    trace_url = f"{broker_origin(shop)}/_shop/traces/{posted['trace_id']}"
    wait_for(  # the broker stores what it took a moment after it answered
        lambda: len(requests.get(trace_url, timeout=5).json().get("spans", [])) == 3 or None,
        timeout=10,
        what=f"the 3 spans at {trace_url}",
    )

    viewer.tab("trace")
    page.fill("#trace-id", posted["trace_id"])
    page.click("#trace-form button[type=submit]")
    rows = page.locator("#trace-waterfall .span-row")
    expect(rows).to_have_count(3)
    expect(page.locator("#trace-summary")).to_contain_text("3 spans · 1 service · 100 ms")
    order = rows.evaluate_all("rows => rows.map(row => [row.dataset.spanId, row.dataset.depth])")
    assert order == [[posted["root"], "0"], [posted["child"], "1"], [posted["delivery"], "2"]]
    root, child, delivery = (
        page.locator(f".span-row[data-span-id='{posted[n]}']")
        for n in ("root", "child", "delivery")
    )
    expect(root).to_have_class("span-row status-ok")
    expect(child).to_have_class("span-row status-error")
    expect(delivery).to_contain_text("attempt 2 · 503")
    expect(delivery).to_contain_text("dead-lettered")
    bars = [row.locator(".span-bar").bounding_box() for row in (root, child, delivery)]
    assert all(bar is not None for bar in bars)
    track = root.locator(".span-track").bounding_box()
    assert track is not None
    # Offset by start and width by duration on one axis: 0-100, 10-70, 20-60 ms.
    for bar, (begin, end) in zip(bars, ((0, 100), (10, 70), (20, 60)), strict=True):
        assert bar is not None
        assert abs(bar["x"] - track["x"] - track["width"] * begin / 100) < 2, (bar, begin)
        assert abs(bar["width"] - track["width"] * (end - begin) / 100) < 2, (bar, end)
    # Indented by depth: each name starts right of its parent's.
    names = [row.locator(".span-service").bounding_box() for row in (root, child, delivery)]
    starts = [name["x"] for name in names if name is not None]
    assert len(starts) == 3 and starts[0] < starts[1] < starts[2], starts
    viewer.screenshot("waterfall")

    delivery.click()
    detail = page.locator("#span-detail")
    expect(detail).to_contain_text("shop.delivery.attempt")
    expect(detail).to_contain_text("shop/payment-order-created")
    page.click("#span-open-event")
    expect(detail.locator(".span-event")).to_have_attribute("data-id", event_id)
    expect(detail.locator(".delivery")).to_have_count(3)
    viewer.screenshot("span-detail")
    page.click("#span-show-event")
    expect(page.locator("#event-detail #detail-id")).to_have_text(event_id)


def test_an_orders_trace_opens_from_its_timeline(
    viewer: ViewerPage, shop: ShopUp, takes_spans: str
) -> None:
    order_id = place_order(shop)
    open_timeline(viewer, order_id, "notification.sent")
    page = viewer.page
    page.click("#timeline-trace")
    expect(page.locator(".tabs button[data-tab=trace]")).to_have_attribute("aria-selected", "true")
    # The broker's receive spans, at whatever depth: under the services' producer spans once
    # those are exported (in batches), the trace's roots before.
    receive = page.locator(
        "#trace-waterfall .span-row[data-service='broker']", has_text="shop/default receive"
    )
    expect(receive.first).to_be_visible()
    deliveries = page.locator("#trace-waterfall .span-row", has_text="attempt 1")
    expect(deliveries.first).to_be_visible()
    viewer.screenshot("order-trace")
    trace_id = page.locator("#trace-id").input_value()

    # The same trace from the event's detail pane.
    viewer.tab("events")
    page.locator("#event-rows tr[data-type='order.created']", has_text=order_id).click()
    page.click("#detail-trace")
    expect(page.locator("#trace-id")).to_have_value(trace_id)
    expect(receive.first).to_be_visible()


def test_a_trace_the_broker_does_not_have_says_so(viewer: ViewerPage) -> None:
    page = viewer.open("trace")
    viewer.expect_error("status of 404")
    page.fill("#trace-id", "0123456789abcdef0123456789abcdef")
    page.click("#trace-form button[type=submit]")
    expect(page.locator("#trace-missing")).to_contain_text("No spans of trace")
