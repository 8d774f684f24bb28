"""The fault suite: each scenario drives load through `shop up`, lands a fault, and prints its
account at the end of the run (docs/reliability.md)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.faults.account import Account
from tests.support.shop_client import ShopClient
from tests.support.shop_up import REPO_ROOT

_ACCOUNTS: list[Account] = []


@pytest.fixture
def account(request: pytest.FixtureRequest) -> Iterator[Any]:
    """`account(scenario, load)`: a new Account this test fills; printed at the end of the run."""

    def new(scenario: str, load: str) -> Account:
        created = Account(scenario, load)
        _ACCOUNTS.append(created)
        return created

    yield new


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ACCOUNTS:
        return
    terminalreporter.section("fault accounts")
    for account in _ACCOUNTS:
        for line in account.lines():
            terminalreporter.write_line(line)


def fault_manifests(target: Path, delivery: Mapping[str, Any]) -> Path:
    """A copy of manifests/ whose Broker's `spec.delivery` is updated with `delivery`."""
    shutil.copytree(REPO_ROOT / "manifests", target)
    brokers = target / "70-brokers.yaml"
    documents = [doc for doc in yaml.safe_load_all(brokers.read_text()) if doc]
    for document in documents:
        if document["kind"] == "Broker":
            document["spec"]["delivery"].update(delivery)
    brokers.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return target


# Enough retries to ride out a 20 s outage: exponential from 0.5 s, 9 retries wait 255 s in all.
RIDE_OUT = {"retry": 9, "backoffDelay": "PT0.5S", "backoffPolicy": "exponential"}


def new_customer(client: ShopClient) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    return client.register(f"Fault Customer {tag}", f"fault-{tag}@example.com")


def new_sku(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"
