"""The shop on a real cluster: topology Ready, the order saga, a dead letter.

Opt-in, for a user with kind (nothing here runs without a cluster):

    make kind-up && skaffold run            # or: helm install shop charts/shop -n shop ...
    SHOP_E2E_CONTEXT=kind-shop .venv/bin/python -m pytest tests/e2e -v

SHOP_E2E_CONTEXT names the kube-context; SHOP_E2E_NAMESPACE the namespace (default shop).
The Knative objects are read with the kubernetes client. The broker ingress and Kourier's
cluster-local gateway (which reaches every Knative Service by its cluster host name, scaling it
from zero if need be) are port-forwarded with `kubectl port-forward`; SHOP_E2E_GATEWAY
(namespace/service, default kourier-system/kourier-internal) names another ingress's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
import requests
from kubernetes import client, config

from tests.chart.rendering import chart_values, saga_module

CONTEXT = os.environ.get("SHOP_E2E_CONTEXT", "")
NAMESPACE = os.environ.get("SHOP_E2E_NAMESPACE", "shop")
GATEWAY_NAMESPACE, _, GATEWAY_SERVICE = os.environ.get(
    "SHOP_E2E_GATEWAY", "kourier-system/kourier-internal"
).partition("/")
BROKER = chart_values()["broker"]["name"]
READY_TIMEOUT = 300.0
T = TypeVar("T")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CONTEXT, reason="SHOP_E2E_CONTEXT names no kube-context"),
]


def eventually(check: Callable[[], T | None], what: str, seconds: float = 120) -> T:
    """Poll `check` until it returns something other than None; fail with what was last seen."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except (requests.RequestException, client.ApiException) as error:
            last = error
        else:
            if found is not None:
                return found
        time.sleep(1)
    pytest.fail(f"{what}: not within {seconds:.0f} s (last seen: {last})")


@pytest.fixture(scope="module")
def custom_objects() -> client.CustomObjectsApi:
    config.load_kube_config(context=CONTEXT)  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


def list_objects(api: client.CustomObjectsApi, group: str, plural: str) -> list[dict[str, Any]]:
    """The namespace's objects of one Knative kind (version v1)."""
    listed = cast(dict[str, Any], api.list_namespaced_custom_object(group, "v1", NAMESPACE, plural))
    return list(listed["items"])


def not_ready(api: client.CustomObjectsApi, group: str, plural: str) -> dict[str, str]:
    """Objects of a kind in the namespace whose Ready condition is not True, with the reason."""
    pending: dict[str, str] = {}
    for item in list_objects(api, group, plural):
        conditions = {c["type"]: c for c in item.get("status", {}).get("conditions", [])}
        ready = conditions.get("Ready", {})
        if ready.get("status") != "True":
            pending[item["metadata"]["name"]] = f"{ready.get('reason')}: {ready.get('message')}"
    return pending


def names(api: client.CustomObjectsApi, group: str, plural: str) -> set[str]:
    return {item["metadata"]["name"] for item in list_objects(api, group, plural)}


@pytest.fixture(scope="module")
def ready(custom_objects: client.CustomObjectsApi) -> None:
    """Every Knative Service, the Broker and every Trigger of the namespace report Ready."""
    for group, plural in (
        ("serving.knative.dev", "services"),
        ("eventing.knative.dev", "brokers"),
        ("eventing.knative.dev", "triggers"),
    ):
        deadline = time.monotonic() + READY_TIMEOUT
        pending = not_ready(custom_objects, group, plural)
        while pending and time.monotonic() < deadline:
            time.sleep(2)
            pending = not_ready(custom_objects, group, plural)
        assert not pending, f"{plural} not Ready in {NAMESPACE}: {pending}"


@pytest.fixture(scope="module")
def port_forward() -> Iterator[Callable[[str, str, int], str]]:
    """Opens `kubectl port-forward svc/<name>` on a free local port; returns the base URL."""
    processes: list[subprocess.Popen[str]] = []

    def forward(namespace: str, service: str, port: int) -> str:
        command = ["kubectl", "--context", CONTEXT, "-n", namespace, "port-forward"]
        process = subprocess.Popen(
            [*command, f"svc/{service}", f":{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        # "Forwarding from 127.0.0.1:41234 -> 8080"; kubectl prints it once it listens.
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"kubectl port-forward svc/{service} in {namespace} said: {line!r}"
        return f"http://127.0.0.1:{match.group(1)}"

    yield forward
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def broker_url(ready: None, port_forward: Callable[[str, str, int], str]) -> str:
    return f"{port_forward('knative-eventing', 'broker-ingress', 80)}/{NAMESPACE}/{BROKER}"


@pytest.fixture(scope="module")
def gateway(ready: None, port_forward: Callable[[str, str, int], str]) -> str:
    return port_forward(GATEWAY_NAMESPACE, GATEWAY_SERVICE, 80)


def host(service: str) -> str:
    return f"{service}.{NAMESPACE}.svc.cluster.local"


def test_the_knative_topology_of_the_chart_is_ready(
    ready: None, custom_objects: client.CustomObjectsApi
) -> None:
    services = chart_values()["services"]
    assert set(services) <= names(custom_objects, "serving.knative.dev", "services")
    assert BROKER in names(custom_objects, "eventing.knative.dev", "brokers")
    triggers = names(custom_objects, "eventing.knative.dev", "triggers")
    for name, service in services.items():
        for event_type in service["subscribes"]:
            assert f"{name}-{event_type.replace('.', '-')}" in triggers


def test_the_broker_ingress_accepts_a_cloudevent(broker_url: str) -> None:
    response = requests.post(
        broker_url,
        data=json.dumps({"note": "e2e ping"}),
        headers={
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "/tests/e2e",
            "ce-type": "shop.e2e.ping",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text


def test_the_order_saga_confirms_an_order_and_sells_its_stock(gateway: str) -> None:
    saga = saga_module()
    sku = f"e2e-{uuid.uuid4().hex[:10]}"
    order = saga.Endpoint(gateway, host("order"))
    inventory = saga.Endpoint(gateway, host("inventory"))
    confirmed = saga.run_saga(order, inventory, sku, timeout=240)
    assert confirmed["status"] == "confirmed"
    assert confirmed["inventory"] == "reserved" and confirmed["payment"] == "authorized"

    def sold() -> dict[str, Any] | None:
        # inventory turns the reservation into a sale when order.confirmed reaches it.
        stock = requests.get(
            f"{gateway}/stock/{sku}", headers={"Host": host("inventory")}, timeout=30
        )
        view: dict[str, Any] = stock.json()
        return view if stock.status_code == 200 and view["sold"] == 1 else None

    stock = eventually(sold, f"one unit of {sku} sold")
    assert stock["reserved"] == 0


def test_an_event_its_subscribers_refuse_reaches_the_dead_letter_sink(
    broker_url: str, gateway: str
) -> None:
    # order.created without its required fields: inventory and payment answer 400, which
    # Knative does not retry; the broker hands the event to its dead-letter sink.
    event_id = f"e2e-dead-{uuid.uuid4()}"
    posted = requests.post(
        broker_url,
        data=json.dumps({"order_id": "e2e-incomplete"}),
        headers={
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-source": "/tests/e2e",
            "ce-type": "order.created",
            "ce-subject": "e2e-incomplete",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    deadletter = chart_values()["broker"]["delivery"]["deadLetterService"]

    def dead_letters() -> list[dict[str, Any]] | None:
        listed = requests.get(
            f"{gateway}/deadletters",
            params={"type": "order.created", "subject": "e2e-incomplete", "limit": "1000"},
            headers={"Host": host(deadletter)},
            timeout=30,
        )
        listed.raise_for_status()
        found = [item for item in listed.json()["dead_letters"] if item["event_id"] == event_id]
        return found if len(found) >= 2 else None

    found = eventually(dead_letters, f"dead letters of {event_id} from inventory and payment")
    assert {item["error_code"] for item in found} == {400}
    destinations = " ".join(str(item["destination"]) for item in found)
    assert "inventory" in destinations and "payment" in destinations
