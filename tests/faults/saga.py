"""A saga scenario's load: a customer and a sku of its own, orders placed while a fault lands,
and the account once everything settled."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email.message import Message

from tests.faults.account import Account, SagaRun, saga_account
from tests.faults.conftest import new_customer, new_sku
from tests.faults.load import OrderLoad, Placed
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp


class SagaLoad:
    """`orders` orders of one unit each at `rate` per second, against exactly that much stock:
    every order can be confirmed, and the stock must end all sold."""

    def __init__(
        self, shop: ShopUp, client: ShopClient, name: str, *, orders: int, rate: float
    ) -> None:
        self._shop = shop
        self._client = client
        self._name = name
        self.orders = orders
        self._rate = rate
        self._load: OrderLoad | None = None
        self._run: SagaRun | None = None
        self.placed: Placed | None = None

    def prepare(self) -> SagaLoad:
        """The customer, the stock and the journal's mark (the broker must answer)."""
        customer = new_customer(self._client)
        sku = new_sku(self._name)
        self._client.set_stock(sku, self.orders)
        self._run = SagaRun((), sku, self.orders, customer["email"], self._client.journal_mark())
        self._load = OrderLoad(
            self._client.url("order"), customer["id"], sku, count=self.orders, rate=self._rate
        )
        return self

    def start(self) -> SagaLoad:
        """Start placing the orders (preparing first if that was not done)."""
        if self._load is None:
            self.prepare()
        assert self._load is not None
        self._load.start()
        return self

    @property
    def mark(self) -> int:
        """The journal's last seq before the load started."""
        assert self._run is not None
        return self._run.mark

    def wait_until(self, fraction: float) -> None:
        assert self._load is not None
        self._load.wait_until(fraction)

    def account(
        self,
        account: Account,
        *,
        fault_over_at: float,
        timeout: float = 150.0,
        mails: Callable[[], Iterable[Message]] | None = None,
    ) -> Account:
        """Wait for the load and the saga to finish; fill and check the account."""
        assert self._load is not None and self._run is not None
        self.placed = placed = self._load.wait()
        account.notes.append(f"client: {placed.retries} placements retried with their key")
        assert not placed.refused, placed.refused
        assert len(set(placed.order_ids)) == len(placed.order_ids) == self.orders
        run = SagaRun(
            placed.order_ids, self._run.sku, self.orders, self._run.customer_email, self._run.mark
        )
        saga_account(
            self._shop,
            self._client,
            run,
            account,
            timeout=timeout,
            fault_over_at=max(fault_over_at, placed.finished),
            mails=mails,
        )
        account.assert_exact()
        return account
