"""The order saga checked end to end: stock a product, place an order, wait until it is confirmed.

`helm test` runs this file in a Job (with the order service's image, standard library only), and
tests/e2e imports it and calls `run_saga` through port-forwards. Configuration of the Job:
SHOP_TEST_ORDER_URL, SHOP_TEST_INVENTORY_URL (base URLs), SHOP_TEST_SKU, SHOP_TEST_TIMEOUT.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

RETRY_STATUSES = frozenset({404, 429, 502, 503, 504})


class SagaFailed(Exception):
    """The saga did not end as expected; the message says what was last seen."""


@dataclass(frozen=True)
class Endpoint:
    """A service's base URL, and the Host header to send when it is reached through a gateway."""

    url: str
    host: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def call(
    endpoint: Endpoint, method: str, path: str, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    """One JSON request; returns the status and the decoded body (None when there is none)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", **endpoint.headers}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if endpoint.host:
        headers["Host"] = endpoint.host
    request = urllib.request.Request(
        endpoint.url.rstrip("/") + path, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return status, decoded


def call_until(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Any,
    *,
    deadline: float,
    expected: set[int],
    poll_seconds: float = 1.0,
) -> Any:
    """Repeat a request through cold starts (connection errors, 404/5xx from the gateway)."""
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            status, decoded = call(endpoint, method, path, body)
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if status in expected:
                return decoded
            last = f"HTTP {status}: {decoded}"
            if status not in RETRY_STATUSES:
                break
        time.sleep(poll_seconds)
    raise SagaFailed(f"{method} {endpoint.url}{path} did not answer {sorted(expected)}: {last}")


def run_saga(
    order: Endpoint,
    inventory: Endpoint,
    sku: str,
    timeout: float,
    *,
    token: str = "tok_ok",
    poll_seconds: float = 1.0,
) -> dict[str, Any]:
    """Place an order of one stocked unit and return the order once the saga confirmed it."""
    deadline = time.monotonic() + timeout
    polling = {"deadline": deadline, "poll_seconds": poll_seconds}
    stock = {"available": 1000}
    call_until(inventory, "PUT", f"/stock/{sku}", stock, expected={200, 201}, **polling)
    placed = call_until(
        order,
        "POST",
        "/orders",
        {
            "customer_id": f"helm-test-{uuid.uuid4().hex[:12]}",
            "lines": [{"sku": sku, "quantity": 1, "unit_price": 450}],
            "currency": "EUR",
            "payment_token": token,
        },
        expected={201},
        **polling,
    )
    order_id = str(placed["id"])
    log("placed", order_id=order_id)
    seen: Any = placed
    while time.monotonic() < deadline:
        seen = call_until(order, "GET", f"/orders/{order_id}", None, expected={200}, **polling)
        if seen.get("status") == "confirmed":
            log("confirmed", order_id=order_id)
            return dict(seen)
        if seen.get("status") == "cancelled":
            raise SagaFailed(f"order {order_id} was cancelled: {seen.get('reason')}")
        time.sleep(poll_seconds)
    raise SagaFailed(f"order {order_id} not confirmed within {timeout:.0f} s; last seen: {seen}")


def log(outcome: str, **fields: Any) -> None:
    print(json.dumps({"check": "saga", "outcome": outcome, **fields}), flush=True)


def main() -> int:
    env = os.environ
    try:
        run_saga(
            Endpoint(env["SHOP_TEST_ORDER_URL"]),
            Endpoint(env["SHOP_TEST_INVENTORY_URL"]),
            env.get("SHOP_TEST_SKU", "helm-test-tea"),
            float(env.get("SHOP_TEST_TIMEOUT", "180")),
        )
    except (SagaFailed, KeyError, ValueError) as error:
        log("failed", error=str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
