"""The shop's HTTP APIs and the local broker's journal, for tests against a running `shop up`.

    client = ShopClient(shop.endpoints)
    user = client.register("Ada", "ada@example.com")
    client.set_stock("tea", 10)
    order = client.place_order(user["id"], [("tea", 2, 450)])
    decided = client.wait_decided([order["id"]])

Every call checks the status code it expects and fails with the answer otherwise. The journal
(`/_shop/events` on the broker's port) is the record of what the broker accepted and of every
delivery attempt; `story()` reads one order's part of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

DECIDED = ("confirmed", "cancelled")
TIMEOUT = 10.0  # one HTTP request


class UnexpectedAnswer(AssertionError):
    """A service answered with a status the test did not expect."""


def _expect(response: requests.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise UnexpectedAnswer(
            f"{response.request.method} {response.url}: {response.status_code}"
            f" (wanted {', '.join(map(str, statuses))}): {response.text[:500]}"
        )
    return response.json() if response.content else None


@dataclass(frozen=True)
class JournalEvent:
    """One event as the broker's journal holds it (`/_shop/events/<seq>`), data included."""

    document: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.document["seq"])

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def type(self) -> str:
        return str(self.document["type"])

    @property
    def subject(self) -> str | None:
        subject = self.document["attributes"].get("subject")
        return None if subject is None else str(subject)

    @property
    def partition_key(self) -> str | None:
        key = self.document["attributes"].get("partitionkey")
        return None if key is None else str(key)

    @property
    def data(self) -> Any:
        return self.document.get("data")

    @property
    def parent_seq(self) -> int | None:
        reply_to = self.document.get("reply_to")
        return None if reply_to is None else int(reply_to["seq"])

    def deliveries(self) -> dict[str, dict[str, Any]]:
        """Each matching trigger (`ns/name`) and the state of its delivery."""
        return {delivery["trigger"]: delivery for delivery in self.document["deliveries"]}

    def attempts(self, trigger: str) -> list[dict[str, Any]]:
        """Every HTTP attempt towards `trigger`'s subscriber, oldest first."""
        return sorted(
            (a for a in self.document["attempts"] if a["trigger"] == trigger),
            key=lambda attempt: (attempt["target"], attempt["attempt"]),
        )

    def __repr__(self) -> str:
        states = {t: d["state"] for t, d in self.deliveries().items()}
        return f"<{self.seq} {self.type} subject={self.subject} id={self.id} {states}>"


class ShopClient:
    """A running shop, through the URLs of its endpoints.json."""

    def __init__(self, endpoints: Mapping[str, str]) -> None:
        self.endpoints = dict(endpoints)
        broker = urlsplit(self.endpoints["broker"])
        self.broker_root = f"{broker.scheme}://{broker.netloc}"  # where /_shop/... lives
        self.http = requests.Session()

    def url(self, service: str) -> str:
        return self.endpoints[service]

    # -- the services' APIs ----------------------------------------------------------------

    def register(self, name: str, email: str) -> dict[str, Any]:
        """POST /users: the new user (201)."""
        response = self.http.post(
            f"{self.url('customer')}/users", json={"name": name, "email": email}, timeout=TIMEOUT
        )
        user: dict[str, Any] = _expect(response, 201)
        return user

    def set_stock(self, sku: str, available: int) -> dict[str, Any]:
        """PUT /stock/<sku>: what is available now (201 for a new sku, else 200)."""
        response = self.http.put(
            f"{self.url('inventory')}/stock/{sku}", json={"available": available}, timeout=TIMEOUT
        )
        stock: dict[str, Any] = _expect(response, 200, 201)
        return stock

    def stock(self, sku: str) -> dict[str, Any]:
        """GET /stock/<sku>: available, reserved, sold, stocked."""
        response = self.http.get(f"{self.url('inventory')}/stock/{sku}", timeout=TIMEOUT)
        stock: dict[str, Any] = _expect(response, 200)
        return stock

    def place_order(
        self,
        customer_id: str,
        lines: Sequence[tuple[str, int, int]],
        *,
        token: str = "tok_ok",
        currency: str = "EUR",
    ) -> dict[str, Any]:
        """POST /orders with lines of (sku, quantity, unit price): the pending order (201)."""
        body = {
            "customer_id": customer_id,
            "lines": [
                {"sku": sku, "quantity": quantity, "unit_price": price}
                for sku, quantity, price in lines
            ],
            "currency": currency,
            "payment_token": token,
        }
        # A session of its own: callers place orders from several threads at once.
        response = requests.post(f"{self.url('order')}/orders", json=body, timeout=TIMEOUT)
        order: dict[str, Any] = _expect(response, 201)
        return order

    def order(self, order_id: str) -> dict[str, Any]:
        """GET /orders/<id>."""
        response = requests.get(f"{self.url('order')}/orders/{order_id}", timeout=TIMEOUT)
        order: dict[str, Any] = _expect(response, 200)
        return order

    def wait_decided(
        self, order_ids: Iterable[str], timeout: float = 20.0
    ) -> dict[str, dict[str, Any]]:
        """Poll until every order is confirmed or cancelled; fail with those still pending."""
        waiting = list(order_ids)
        decided: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while waiting:
            for order_id in list(waiting):
                try:
                    last[order_id] = view = self.order(order_id)
                except (requests.RequestException, UnexpectedAnswer) as error:
                    last[order_id] = {"error": str(error)}  # e.g. order is restarting
                    continue
                if view["status"] in DECIDED:
                    decided[order_id] = view
                    waiting.remove(order_id)
            if not waiting:
                break
            if time.monotonic() > deadline:
                pending = {order_id: last.get(order_id) for order_id in waiting}
                raise AssertionError(f"orders not decided after {timeout}s: {pending}")
            time.sleep(0.05)
        return decided

    def notifications(self, subject: str) -> list[dict[str, Any]]:
        """GET /notifications?subject=: the mails about one order or user, newest first."""
        response = self.http.get(
            f"{self.url('notification')}/notifications",
            params={"subject": subject},
            timeout=TIMEOUT,
        )
        found: list[dict[str, Any]] = _expect(response, 200)
        return found

    def dead_letters(self, subject: str) -> list[dict[str, Any]]:
        """GET /deadletters?subject= on the deadletter service."""
        response = self.http.get(
            f"{self.url('deadletter')}/deadletters", params={"subject": subject}, timeout=TIMEOUT
        )
        found: list[dict[str, Any]] = _expect(response, 200)["dead_letters"]
        return found

    def timeline(self, subject: str) -> list[dict[str, Any]]:
        """The viewer's timeline of one subject (`GET /api/timeline?subject=`)."""
        response = self.http.get(
            f"{self.url('viewer')}/api/timeline", params={"subject": subject}, timeout=TIMEOUT
        )
        events: list[dict[str, Any]] = _expect(response, 200)["events"]
        return events

    # -- the broker's journal --------------------------------------------------------------

    def journal(self, after: int = 0) -> list[dict[str, Any]]:
        """Every event the broker accepted with seq > `after` (summaries, oldest first)."""
        events: list[dict[str, Any]] = []
        while True:
            response = self.http.get(
                f"{self.broker_root}/_shop/events",
                params={"after": after, "limit": 1000},
                timeout=TIMEOUT,
            )
            page = _expect(response, 200)
            events.extend(page["events"])
            if not page["events"]:
                return events
            after = int(page["next_after"])

    def journal_mark(self) -> int:
        """The seq of the last event accepted so far (0 for none): `journal(after=mark)`."""
        events = self.journal()
        return int(events[-1]["seq"]) if events else 0

    def journal_event(self, seq: int) -> JournalEvent:
        """One event in full: data, deliveries and every attempt."""
        response = self.http.get(f"{self.broker_root}/_shop/events/{seq}", timeout=TIMEOUT)
        return JournalEvent(_expect(response, 200))

    def story(self, order_id: str, after: int = 0) -> list[JournalEvent]:
        """Everything the order caused, by the journal's causality, in order of acceptance.

        The roots are the order's `order.created` (more than one row if the outbox relayed it
        twice); every reply to an event of the story (the broker records which event a reply
        answered) belongs to it too, and so does an event a service's outbox sent later in the
        order's trace (no reply, the same trace id: notification.sent, which the mail sender
        emits for the event the mail is about). The subjects are not used to find it, so a test
        can check them.
        """
        created_id = self._created_event_id(order_id)
        summaries = self.journal(after)
        children: dict[int, list[int]] = {}
        roots = []
        for event in summaries:
            if event["type"] == "order.created" and event["id"] == created_id:
                roots.append(int(event["seq"]))
            parent = event.get("reply_to")
            if parent is not None:
                children.setdefault(int(parent["seq"]), []).append(int(event["seq"]))
        traces = {_trace_id(e) for e in summaries if int(e["seq"]) in roots} - {None}
        roots.extend(
            int(e["seq"])
            for e in summaries
            if e.get("reply_to") is None and e["type"] != "order.created" and _trace_id(e) in traces
        )
        members: list[int] = []
        todo = list(roots)
        while todo:
            seq = todo.pop()
            members.append(seq)
            todo.extend(children.get(seq, []))
        return [self.journal_event(seq) for seq in sorted(members)]

    def _created_event_id(self, order_id: str) -> str:
        sent = [
            seen["id"]
            for seen in self.order(order_id)["events"]
            if seen["direction"] == "sent" and seen["type"] == "order.created"
        ]
        assert len(sent) == 1, f"order {order_id} sent order.created {len(sent)} times: {sent}"
        return str(sent[0])


def _trace_id(summary: Mapping[str, Any]) -> str | None:
    """The trace id of a journal summary's `traceparent` (`00-<trace id>-<span>-<flags>`)."""
    parts = str(summary["attributes"].get("traceparent", "")).split("-")
    return parts[1] if len(parts) == 4 else None
