"""Load for fault scenarios: orders placed open-loop from several threads while a fault lands.

Every order carries its own `Idempotency-Key`, and a placement that got no answer, or a 503, is
sent again with the same key until it is answered: a client that retries like this places each
order once, whatever the order service went through meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

RETRYABLE = frozenset({408, 409, 429, 502, 503, 504})
TIMEOUT = 10.0


@dataclass
class Placed:
    """What the load placed: the order ids (201 answers) and what it met on the way."""

    order_ids: list[str] = field(default_factory=list)
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


class OrderLoad:
    """`count` orders at `rate` per second, in a background thread; `wait()` returns them."""

    def __init__(
        self,
        order_url: str,
        customer_id: str,
        sku: str,
        *,
        count: int,
        rate: float,
        price: int = 450,
        token: str = "tok_ok",
        threads: int = 8,
        give_up_after: float = 120.0,
    ) -> None:
        self._url = f"{order_url}/orders"
        self._body = {
            "customer_id": customer_id,
            "lines": [{"sku": sku, "quantity": 1, "unit_price": price}],
            "currency": "EUR",
            "payment_token": token,
        }
        self._count = count
        self._rate = rate
        self._threads = threads
        self._give_up_after = give_up_after
        self._placed = Placed()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-load", daemon=True)
        self.progress = 0

    def start(self) -> OrderLoad:
        self._thread.start()
        return self

    def wait_until(self, fraction: float, timeout: float = 120.0) -> None:
        """Return once `fraction` of the orders were sent (not necessarily answered)."""
        deadline = time.monotonic() + timeout
        while self.progress < fraction * self._count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load sent {self.progress}/{self._count} orders")
            time.sleep(0.05)

    def wait(self, timeout: float = 180.0) -> Placed:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the load did not finish in {timeout}s")
        return self._placed

    def _run(self) -> None:
        self._placed.started = time.monotonic()
        with ThreadPoolExecutor(self._threads, thread_name_prefix="order-load") as pool:
            for index in range(self._count):
                due = self._placed.started + index / self._rate
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(self._place)
                self.progress = index + 1
        self._placed.finished = time.monotonic()

    def _place(self) -> None:
        key = uuid.uuid4().hex
        session = requests.Session()
        deadline = time.monotonic() + self._give_up_after
        delay = 0.2
        while True:
            answer = _post(session, self._url, self._body, key)
            if isinstance(answer, dict):
                with self._lock:
                    self._placed.order_ids.append(str(answer["id"]))
                return
            if answer is not None or time.monotonic() > deadline:
                with self._lock:
                    self._placed.refused.append(answer or "no answer before the deadline")
                return
            with self._lock:
                self._placed.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _post(
    session: requests.Session, url: str, body: dict[str, Any], key: str
) -> dict[str, Any] | str | None:
    """The order (201), None for "try again" (no answer, a retryable status), else why not."""
    try:
        response = session.post(url, json=body, headers={"Idempotency-Key": key}, timeout=TIMEOUT)
    except requests.RequestException:
        return None
    if response.status_code in (200, 201):
        order: dict[str, Any] = response.json()
        return order
    if response.status_code in RETRYABLE:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"
