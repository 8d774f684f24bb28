"""One order is one trace: `shop up` of the chart's manifests, every service exporting its spans
to the broker's OTLP receiver, read back through `GET /_shop/traces/<id>`.

Beside the shop's own Triggers, a flaky subscriber takes `order.created` and fails it (500) once
and again on the retry, so the trace holds a retried delivery and a dead letter too.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from kit.tracing import trace_id
from tests.integration.deadletter.topology import EVENTING_API, KSVC_API, gunicorn_service
from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import REPO_ROOT, ShopUp

FLAKY_TRIGGER = "flaky-order-created"


def flaky_order_subscriber() -> list[dict[str, Any]]:
    """A subscriber of `order.created` that answers 500, retried once, then dead-lettered."""
    flaky = gunicorn_service(
        "flaky",
        "tests.integration.deadletter.flaky_sink:create_app()",
        {"FLAKY_FAILING": "1", "FLAKY_STATUS": "500"},
    )
    deadletter = {"ref": {"apiVersion": KSVC_API, "kind": "Service", "name": "deadletter"}}
    trigger = {
        "apiVersion": EVENTING_API,
        "kind": "Trigger",
        "metadata": {"name": FLAKY_TRIGGER, "namespace": "shop"},
        "spec": {
            "broker": "default",
            "filters": [{"exact": {"type": "order.created"}}],
            "subscriber": {"ref": {"apiVersion": KSVC_API, "kind": "Service", "name": "flaky"}},
            "delivery": {
                "retry": 1,
                "backoffPolicy": "linear",
                "backoffDelay": "PT0.1S",
                "deadLetterSink": deadletter,
            },
        },
    }
    return [flaky, trigger]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    root = tmp_path_factory.mktemp("order-trace")
    manifests = root / "manifests"
    manifests.mkdir()
    for source in sorted((REPO_ROOT / "manifests").glob("*.yaml")):
        shutil.copy(source, manifests / source.name)
    (manifests / "99-flaky.yaml").write_text(yaml.safe_dump_all(flaky_order_subscriber()))
    with ShopUp(manifests, root / "state") as running:
        yield running


def order_created_trace(client: ShopClient, order_id: str) -> str:
    def found() -> str | None:
        for event in client.story(order_id):
            if event.type == "order.created":
                return trace_id(event.document["attributes"].get("traceparent"))
        return None

    return wait_for(found, timeout=20, what=f"order.created of {order_id} in the journal")


def spans_of(shop: ShopUp, trace: str, complete: Any) -> list[dict[str, Any]]:
    """The trace's spans once `complete(spans)` holds (services export in batches)."""

    def read() -> list[dict[str, Any]] | None:
        response = requests.get(f"http://127.0.0.1:{shop.port}/_shop/traces/{trace}", timeout=5)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        spans: list[dict[str, Any]] = response.json()["spans"]
        return spans if complete(spans) else None

    return wait_for(read, timeout=30, interval=0.5, what=f"the spans of trace {trace}")


def named(spans: list[dict[str, Any]], service: str, name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["service"] == service and s["name"] == name]


def test_an_order_is_one_trace_through_the_broker_its_retries_and_its_dead_letter(
    shop: ShopUp,
) -> None:
    client = ShopClient(shop.endpoints)
    tag = uuid.uuid4().hex[:8]
    customer = client.register(f"Traced {tag}", f"traced-{tag}@example.com")
    sku = f"trace-{tag}"
    client.set_stock(sku, 5)
    placed = client.place_order(customer["id"], [(sku, 1, 300)])
    wait_for(
        lambda: client.order(placed["id"])["status"] == "confirmed",
        timeout=30,
        what="the order confirmed",
    )
    trace = order_created_trace(client, placed["id"])

    # Each service exports in batches of its own: wait for every span the test looks at.
    wanted = [
        ("order", "POST /orders"),
        ("order", "create order.created"),
        ("inventory", "process order.created"),
        ("payment", "process order.created"),
        ("notification", "process order.confirmed"),
        ("broker", f"shop/{FLAKY_TRIGGER} dead-letter"),
        ("deadletter", "process order.created"),
    ]

    def complete(spans: list[dict[str, Any]]) -> bool:
        return all(named(spans, service, name) for service, name in wanted) and (
            len(named(spans, "broker", f"shop/{FLAKY_TRIGGER} deliver")) == 2
        )

    spans = spans_of(shop, trace, complete)
    by_id = {span["span_id"]: span for span in spans}

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        found = by_id.get(span["parent_span_id"])
        assert found is not None, (span, sorted(by_id))
        return found

    # POST /orders is the root; the order service's producer span is inside it.
    [route] = named(spans, "order", "POST /orders")
    assert (route["kind"], route["parent_span_id"]) == ("server", None)
    [created] = named(spans, "order", "create order.created")
    assert created["kind"] == "producer"
    ancestor = parent(created)
    while ancestor is not route:
        ancestor = parent(ancestor)

    # The broker took order.created as a child of that producer span, and delivered it.
    [received] = [
        s
        for s in named(spans, "broker", "shop/default receive")
        if s["attributes"]["cloudevents.event_type"] == "order.created"
    ]
    assert parent(received) is created
    seq = received["attributes"]["shop.event.seq"]
    deliveries = [
        s
        for s in spans
        if s["name"].endswith(" deliver") and s["attributes"].get("shop.event.seq") == seq
    ]
    assert len(deliveries) >= 4 and all(parent(s) is received for s in deliveries), deliveries

    # Inventory and payment consumed it, each under the broker's attempt that brought it.
    for service in ("inventory", "payment"):
        [consumed] = named(spans, service, "process order.created")
        attempt = parent(consumed)
        assert attempt["service"] == "broker" and attempt["name"].endswith(" deliver"), attempt
        assert attempt["attributes"]["http.response.status_code"] == 200

    # The flaky subscriber failed twice (the attempt and its retry), then the dead letter.
    flaky = named(spans, "broker", f"shop/{FLAKY_TRIGGER} deliver")
    assert sorted(s["attributes"]["shop.delivery.attempt"] for s in flaky) == [1, 2]
    assert {s["attributes"]["http.response.status_code"] for s in flaky} == {500}
    assert all(s["status"] == "error" for s in flaky)
    [dead_letter] = named(spans, "broker", f"shop/{FLAKY_TRIGGER} dead-letter")
    assert parent(dead_letter) is received
    [kept] = named(spans, "deadletter", "process order.created")
    assert parent(kept) is dead_letter

    # The saga goes on in the same trace: order.confirmed reached notification.
    [mailed] = named(spans, "notification", "process order.confirmed")
    assert parent(mailed)["service"] == "broker"
