"""One `shop up --oidc` of the chart rendered with sender identity on, its services on a PostgreSQL
server this package starts, logging in with a password: what the security tests look at."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.chart.rendering import find_helm, is_helm, render_module
from tests.conftest import require
from tests.support.postgres_server import PrivateServer, private_server, unavailable_reason
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

NAMESPACE = "shop"
SENDER_IDENTITY = ("namespace.create=true", "senderIdentity.enabled=true")
STATEFUL = ("customer", "order", "inventory", "payment", "notification", "deadletter")
DATABASE_USER = "shop_app"
# A secret no log line or journal entry may ever hold.
DATABASE_PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="package")
def oidc_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    helm = find_helm(4)
    require(is_helm(helm, 4), "helm 4 is not installed -> make tools")
    render = render_module()
    folder = tmp_path_factory.mktemp("oidc-manifests")
    render.write(render.render(helm, set_values=SENDER_IDENTITY), folder)
    return folder


@pytest.fixture(scope="package")
def postgres() -> Iterator[PrivateServer]:
    reason = unavailable_reason()
    require(reason is None, f"{reason} -> `apt-get install postgresql`")
    with private_server() as server:
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(
                sa.text(f"CREATE ROLE {DATABASE_USER} LOGIN PASSWORD '{DATABASE_PASSWORD}'")
            )
            for name in STATEFUL:
                connection.execute(sa.text(f'CREATE DATABASE "{name}" OWNER {DATABASE_USER}'))
        admin.dispose()
        yield server


@pytest.fixture(scope="package")
def shop(
    tmp_path_factory: pytest.TempPathFactory, oidc_manifests: Path, postgres: PrivateServer
) -> Iterator[ShopUp]:
    base = sa.make_url(postgres.url).set(username=DATABASE_USER, password=DATABASE_PASSWORD)
    env = {
        name: {"DATABASE_URL": base.set(database=name).render_as_string(hide_password=False)}
        for name in STATEFUL
    }
    state = tmp_path_factory.mktemp("oidc") / "state"
    with ShopUp(oidc_manifests, state, env_overrides=env, extra_args=["--oidc"]) as running:
        yield running


@pytest.fixture(scope="package")
def client(shop: ShopUp) -> ShopClient:
    return ShopClient(shop.endpoints)


@pytest.fixture
def customer(client: ShopClient) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    return client.register(f"Secure Customer {tag}", f"secure-{tag}@example.com")
