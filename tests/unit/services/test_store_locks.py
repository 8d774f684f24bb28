"""On PostgreSQL an order's reservation or payment is locked while an event about it is handled.

SQLite takes the whole database for a writer (BEGIN IMMEDIATE), so only PostgreSQL shows the row
lock: a second transaction that wants the same row waits, here until its lock_timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from services.inventory import store as inventory_store
from services.inventory.app import create_app as create_inventory
from services.payment import store as payment_store
from services.payment.app import PaymentConfig
from services.payment.app import create_app as create_payment
from tests.unit.services.running_service import RunningService, kit_config

pytestmark = pytest.mark.postgres

Claim = Callable[[sa.Connection, str, str], Any]
Find = Callable[..., Any]


def inventory_app(url: str) -> RunningService:
    return RunningService(create_inventory(kit_config("inventory", url)))


def payment_app(url: str) -> RunningService:
    return RunningService(create_payment(PaymentConfig(kit_config("payment", url))))


STORES = {
    "inventory": (
        inventory_app,
        inventory_store.claim_or_lock,
        inventory_store.find_reservation,
        inventory_store.NEW,
    ),
    "payment": (
        payment_app,
        payment_store.claim_or_lock,
        payment_store.find_payment,
        payment_store.NEW,
    ),
}


@pytest.fixture(params=sorted(STORES))
def locking(
    request: pytest.FixtureRequest, postgres_database: str
) -> Iterator[tuple[sa.Engine, Claim, Find, str]]:
    start, claim, find, state = STORES[request.param]
    running = start(postgres_database)
    assert running.service.engine is not None
    yield running.service.engine, claim, find, state
    running.close()


def waits_for_the_lock(engine: sa.Engine, attempt: Callable[[sa.Connection], Any]) -> bool:
    """Whether `attempt` had to wait for a lock (it gives up after 200 ms)."""
    with engine.connect() as connection, connection.begin():
        connection.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
        try:
            attempt(connection)
        except sa.exc.OperationalError as error:
            assert "lock timeout" in str(error), error
            return True
        return False


def test_claiming_an_existing_row_locks_it_until_the_claimer_commits(
    locking: tuple[sa.Engine, Claim, Find, str],
) -> None:
    engine, claim, find, state = locking
    with engine.begin() as connection:
        assert claim(connection, "o-1", state) is None, "the first claim creates the row"
    with engine.connect() as holder, holder.begin():
        assert claim(holder, "o-1", state) is not None, "the second finds it, and locks it"
        assert waits_for_the_lock(engine, lambda other: claim(other, "o-1", state))
        assert waits_for_the_lock(engine, lambda other: find(other, "o-1", lock=True))
        assert not waits_for_the_lock(engine, lambda other: find(other, "o-1"))
    assert not waits_for_the_lock(engine, lambda other: claim(other, "o-1", state))
