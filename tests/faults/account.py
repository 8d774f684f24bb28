"""The account of a fault scenario, computed from the outside once the system has settled.

Every delivery the broker accepted (one per event and matching Trigger) ended delivered or
dead-lettered; for the saga, every order was decided once, charged at most once, mailed once,
and the stock adds up. `Account.lines()` is what the suite prints at the end of the run.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parseaddr
from typing import Any

from tests.support.shop_client import DECIDED, ShopClient
from tests.support.shop_up import ShopUp

FINAL = frozenset({"delivered", "dead_lettered", "kept"})
DEAD = frozenset({"dead_lettered", "kept"})
MAILED = "notification.sent"  # the last event of every order's saga


@dataclass
class Account:
    """One scenario's numbers (docs/reliability.md has the table of them)."""

    scenario: str
    load: str
    accepted: int = 0  # events the broker accepted
    deliveries: int = 0  # (event, trigger) pairs those events owed
    delivered: int = 0
    dead_lettered: int = 0
    unfinished: int = 0
    duplicated_effects: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.deliveries == self.delivered + self.dead_lettered and not self.unfinished

    def lines(self) -> list[str]:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        lines = [
            f"{self.scenario}: {self.load}; broker accepted {self.accepted} events owing "
            f"{self.deliveries} deliveries = {self.delivered} delivered + {self.dead_lettered} "
            f"dead-lettered ({self.unfinished} unfinished); duplicated effects "
            f"{len(self.duplicated_effects)}; recovered in {recovery}",
        ]
        lines.extend(f"    {note}" for note in self.notes)
        lines.extend(f"    DUPLICATE: {what}" for what in self.duplicated_effects[:20])
        return lines

    def assert_exact(self) -> None:
        assert self.balanced, "\n".join(self.lines())
        assert not self.duplicated_effects, "\n".join(self.lines())


def count_deliveries(account: Account, events: Iterable[Mapping[str, Any]]) -> None:
    """Add the journal events' deliveries to the account."""
    for event in events:
        account.accepted += 1
        for delivery in event["deliveries"]:
            account.deliveries += 1
            state = delivery["state"]
            if state == "delivered":
                account.delivered += 1
            elif state in DEAD:
                account.dead_lettered += 1
            else:
                account.unfinished += 1


def settled(events: Iterable[Mapping[str, Any]]) -> bool:
    return all(d["state"] in FINAL for event in events for d in event["deliveries"])


def wait_settled(
    client: ShopClient,
    mark: int,
    belongs: Any,
    *,
    timeout: float,
    done: Callable[[list[dict[str, Any]]], str | None] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Poll the journal after `mark` until every event `belongs(event)` selects has only final
    deliveries and `done(events)` (if given) says nothing is missing (None); the events and
    when that was first seen."""
    deadline = time.monotonic() + timeout
    while True:
        events = [event for event in client.journal(mark) if belongs(event)]
        missing = None if done is None else done(events)
        if settled(events) and missing is None:
            return events, time.monotonic()
        if time.monotonic() > deadline:
            waiting = [
                (event["seq"], event["type"], d["trigger"], d["state"])
                for event in events
                for d in event["deliveries"]
                if d["state"] not in FINAL
            ]
            raise AssertionError(
                f"not settled after {timeout}s; deliveries waiting: {waiting[:30]}; {missing}"
            )
        time.sleep(0.5)


@dataclass(frozen=True)
class SagaRun:
    """What a saga scenario started with: its orders, its sku and stock, its customer."""

    order_ids: Sequence[str]
    sku: str
    stocked: int
    customer_email: str
    mark: int


def saga_account(
    shop: ShopUp,
    client: ShopClient,
    run: SagaRun,
    account: Account,
    *,
    timeout: float = 120.0,
    fault_over_at: float | None = None,
    mails: Callable[[], Iterable[Message]] | None = None,
) -> Account:
    """Wait for every order of the run to be decided and its events settled, then count."""
    orders: dict[str, dict[str, Any]] = {}

    def all_decided(events: list[dict[str, Any]]) -> str | None:
        mailed = {e["attributes"].get("subject") for e in events if e["type"] == MAILED}
        unmailed = [order_id for order_id in run.order_ids if order_id not in mailed]
        if unmailed:
            return f"{len(unmailed)} orders without {MAILED}, e.g. {unmailed[:3]}"
        for order_id in run.order_ids:
            if orders.get(order_id, {}).get("status") not in DECIDED:
                try:
                    orders[order_id] = client.order(order_id)
                except Exception as error:  # the order service may be restarting
                    return f"order {order_id}: {error}"
                if orders[order_id]["status"] not in DECIDED:
                    return f"order {order_id} is {orders[order_id]['status']}"
        return None

    wanted = set(run.order_ids)
    events, settled_at = wait_settled(
        client,
        run.mark,
        lambda event: event["attributes"].get("subject") in wanted,
        timeout=timeout,
        done=all_decided,
    )
    count_deliveries(account, events)
    if fault_over_at is not None:
        account.recovery_seconds = max(0.0, settled_at - fault_over_at)
    kept = list(mails() if mails is not None else shop.mails())
    account.duplicated_effects.extend(_saga_duplicates(events, orders, run, client, kept))
    outcomes = Counter(order["status"] for order in orders.values())
    account.notes.append(
        f"orders: {len(run.order_ids)} placed, {outcomes['confirmed']} confirmed, "
        f"{outcomes['cancelled']} cancelled"
    )
    return account


def _saga_duplicates(
    events: Sequence[Mapping[str, Any]],
    orders: Mapping[str, Mapping[str, Any]],
    run: SagaRun,
    client: ShopClient,
    kept: Iterable[Message],
) -> list[str]:
    """Every effect that happened more than once (or a stock that does not add up)."""
    ids: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        ids[event["attributes"]["subject"]][event["type"]].add(event["id"])
    mails = Counter(
        _order_of(str(mail["Subject"]))
        for mail in kept
        if parseaddr(str(mail["To"]))[1] == run.customer_email
    )
    found = []
    for order_id in run.order_ids:
        types = ids[order_id]
        decisions = len(types["order.confirmed"]) + len(types["order.cancelled"])
        if decisions != 1:
            found.append(f"order {order_id} decided {decisions} times")
        if len(types["payment.authorized"]) > 1:
            found.append(f"order {order_id} charged {len(types['payment.authorized'])} times")
        if len(types["inventory.reserved"]) > 1:
            found.append(f"order {order_id} reserved {len(types['inventory.reserved'])} times")
        if mails[order_id] != 1:
            found.append(f"order {order_id} mailed {mails[order_id]} times")
    sold = sum(1 for order in orders.values() if order["status"] == "confirmed")
    stock = client.stock(run.sku)
    if stock["available"] + stock["reserved"] + stock["sold"] != stock["stocked"]:
        found.append(f"stock does not add up: {stock}")
    if (stock["stocked"], stock["sold"], stock["reserved"]) != (run.stocked, sold, 0):
        found.append(f"stock {stock}: expected {run.stocked} stocked, {sold} sold, 0 reserved")
    return found


def _order_of(mail_subject: str) -> str:
    """The order id in a mail's subject ("Order <id> is confirmed"), else ""."""
    words = mail_subject.split()
    return words[1] if len(words) > 1 and words[0] == "Order" else ""
