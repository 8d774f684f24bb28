"""The mail server refusing (451) for a while, then down for a while, under load: every mail is
retried and sent once, and nothing else in the saga notices."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.conftest import RIDE_OUT, fault_manifests
from tests.faults.saga import SagaLoad
from tests.faults.smtp import TestSmtpServer
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

ORDERS = 300
RATE = 25.0
REFUSING_SECONDS = 6.0
DOWN_SECONDS = 6.0


@pytest.fixture(scope="module")
def smtp() -> Iterator[TestSmtpServer]:
    server = TestSmtpServer()
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, smtp: TestSmtpServer) -> Iterator[ShopUp]:
    root = tmp_path_factory.mktemp("mail-faults")
    manifests = fault_manifests(root / "manifests", RIDE_OUT)
    env = {"notification": {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}}
    with ShopUp(manifests, root / "state", env_overrides=env) as running:
        yield running


def test_mails_are_retried_while_the_server_refuses_or_is_down_and_sent_once(
    shop: ShopUp, smtp: TestSmtpServer, account: Any
) -> None:
    client = ShopClient(shop.endpoints)
    load = SagaLoad(shop, client, "smtp-down", orders=ORDERS, rate=RATE).start()
    load.wait_until(0.2)
    smtp.refusing = True
    time.sleep(REFUSING_SECONDS)
    smtp.refusing = False
    smtp.down()
    time.sleep(DOWN_SECONDS)
    smtp.up()
    result = load.account(
        account(
            f"SMTP 451 for {REFUSING_SECONDS:.0f} s, then down {DOWN_SECONDS:.0f} s",
            f"{ORDERS} orders",
        ),
        fault_over_at=time.monotonic(),
        mails=smtp.mails,
    )
    result.notes.append(f"SMTP server: {smtp.refused} mails refused with 451 while refusing")
    assert smtp.refused > 0
    assert result.dead_lettered == 0
