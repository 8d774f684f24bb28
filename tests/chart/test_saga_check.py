"""charts/shop/files/saga_check.py, the helm test's client, against a scripted shop over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.chart.rendering import saga_module


class ScriptedShop(BaseHTTPRequestHandler):
    """Inventory and order in one: cold at first (503), then the order moves on each GET."""

    statuses: list[str] = []
    cold_answers = 2
    requests: list[tuple[str, str, str | None, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on `requests`."""

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        type(self).requests.append((self.command, self.path, self.headers.get("Host"), body))
        return body

    def do_PUT(self) -> None:
        self._record()
        if type(self).cold_answers > 0:
            type(self).cold_answers -= 1
            self._answer(503, {"error": "scaling from zero"})
            return
        self._answer(201, {"sku": self.path.rsplit("/", 1)[-1], "available": 1000})

    def do_POST(self) -> None:
        self._record()
        self._answer(201, {"id": "o-1", "status": "pending"})

    def do_GET(self) -> None:
        self._record()
        status = type(self).statuses.pop(0) if len(type(self).statuses) > 1 else self.statuses[0]
        self._answer(200, {"id": "o-1", "status": status, "reason": "payment: card_declined"})


@pytest.fixture
def shop() -> Iterator[tuple[str, type[ScriptedShop]]]:
    handler = type("Shop", (ScriptedShop,), {"requests": [], "cold_answers": 2})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_saga_check_waits_through_cold_starts_until_the_order_is_confirmed(
    shop: tuple[str, type[ScriptedShop]],
) -> None:
    url, handler = shop
    handler.statuses = ["pending", "pending", "confirmed"]
    saga = saga_module()
    order = saga.Endpoint(url, host="order.shop.svc.cluster.local")
    inventory = saga.Endpoint(url, host="inventory.shop.svc.cluster.local")
    confirmed = saga.run_saga(order, inventory, "tea", timeout=30, poll_seconds=0.01)
    assert confirmed["status"] == "confirmed"
    methods = [(method, path, host) for method, path, host, _ in handler.requests]
    assert methods[:4] == [
        ("PUT", "/stock/tea", "inventory.shop.svc.cluster.local"),
        ("PUT", "/stock/tea", "inventory.shop.svc.cluster.local"),
        ("PUT", "/stock/tea", "inventory.shop.svc.cluster.local"),
        ("POST", "/orders", "order.shop.svc.cluster.local"),
    ]
    placed = handler.requests[3][3]
    assert placed["lines"] == [{"sku": "tea", "quantity": 1, "unit_price": 450}]
    assert placed["payment_token"] == "tok_ok"


def test_the_saga_check_fails_on_a_cancelled_order(shop: tuple[str, type[ScriptedShop]]) -> None:
    url, handler = shop
    handler.statuses = ["cancelled"]
    saga = saga_module()
    with pytest.raises(saga.SagaFailed, match="cancelled: payment: card_declined"):
        saga.run_saga(saga.Endpoint(url), saga.Endpoint(url), "tea", 30, poll_seconds=0.01)
