"""PostgreSQL down for 20 s under load: the services answer 503 with Retry-After, the broker
retries, the outbox waits; when the server is back everything completes, once.

The services run on a PostgreSQL server this test starts itself (one database each), never the
machine's shared one: stopping that would break every other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import require
from tests.faults.conftest import RIDE_OUT, fault_manifests
from tests.faults.saga import SagaLoad
from tests.support.postgres_server import PrivateServer, private_server, unavailable_reason
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

ORDERS = 300
RATE = 25.0
OUTAGE_SECONDS = 20.0
STATEFUL = ("customer", "order", "inventory", "payment", "notification", "deadletter")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivateServer]:
    reason = unavailable_reason()
    require(reason is None, f"{reason} -> `apt-get install postgresql`")
    with private_server() as server:
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in STATEFUL:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        yield server


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, postgres: PrivateServer) -> Iterator[ShopUp]:
    root: Path = tmp_path_factory.mktemp("pg-faults")
    manifests = fault_manifests(root / "manifests", {**RIDE_OUT, "timeout": "PT5S"})
    base = sa.make_url(postgres.url)
    env = {
        name: {"DATABASE_URL": base.set(database=name).render_as_string(hide_password=False)}
        for name in STATEFUL
    }
    with ShopUp(manifests, root / "state", env_overrides=env) as running:
        yield running


def test_postgresql_down_for_20_seconds_under_load_loses_nothing(
    shop: ShopUp, postgres: PrivateServer, account: Any
) -> None:
    client = ShopClient(shop.endpoints)
    load = SagaLoad(shop, client, "pg-down", orders=ORDERS, rate=RATE).start()
    load.wait_until(0.3)
    postgres.down()
    down_at = time.monotonic()
    try:
        time.sleep(2.0)
        during = client.http.get(f"{client.url('inventory')}/stock/some-sku", timeout=10)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    finally:
        postgres.up()
    back_at = time.monotonic()
    result = load.account(
        account(f"PostgreSQL down {OUTAGE_SECONDS:.0f} s", f"{ORDERS} orders"),
        fault_over_at=back_at,
    )
    assert result.dead_lettered == 0
    # While it was down: "retry later", never a 500; the clients retried with their keys.
    assert during.status_code == 503, during.text
    assert "Retry-After" in during.headers and "error" in during.json()
    assert load.placed is not None and load.placed.retries > 0
