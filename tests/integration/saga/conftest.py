"""One `shop up` of the checked-in manifests/ for every saga test; fresh users and skus per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.shop_client import ShopClient
from tests.support.shop_up import REPO_ROOT, ShopUp


@pytest.fixture(scope="package")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    """The whole system, as `make up` runs it (on a free broker port and a temporary state dir)."""
    with ShopUp(REPO_ROOT / "manifests", tmp_path_factory.mktemp("saga") / "state") as running:
        yield running


@pytest.fixture(scope="package")
def client(shop: ShopUp) -> ShopClient:
    return ShopClient(shop.endpoints)


@pytest.fixture
def customer(client: ShopClient) -> dict[str, Any]:
    """A user of this test alone (the notification service mails them about their orders)."""
    tag = uuid.uuid4().hex[:8]
    return client.register(f"Test Customer {tag}", f"customer-{tag}@example.com")


@pytest.fixture
def journal_mark(client: ShopClient) -> int:
    """The journal's last seq when the test started: its events come after it."""
    return client.journal_mark()


def new_sku(name: str) -> str:
    """A sku no other test touches."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
