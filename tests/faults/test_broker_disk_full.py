"""The broker's disk full under load: it answers 503, loses nothing it had accepted, and recovers
when space returns; the outboxes keep what it refused and send it again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require
from tests.faults.conftest import RIDE_OUT, fault_manifests
from tests.faults.disk import cannot_mount, fill, free_bytes, tmpfs
from tests.faults.saga import SagaLoad
from tests.support.events import binary_request
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

ORDERS = 300
RATE = 25.0
FULL_SECONDS = 6.0
DISK_MB = 64
PROBE_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def broker_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    reason = cannot_mount()
    require(reason is None, f"{reason} -> run the fault suite as root (CI does)")
    root = tmp_path_factory.mktemp("disk-faults")
    with tmpfs(root / "state" / "broker", DISK_MB) as folder:
        yield root, folder


@pytest.fixture(scope="module")
def shop(broker_dir: tuple[Path, Path]) -> Iterator[ShopUp]:
    root, _ = broker_dir
    manifests = fault_manifests(root / "manifests", RIDE_OUT)
    with ShopUp(manifests, root / "state") as running:
        yield running


def _probe_until_refused(url: str, until: float) -> requests.Response | None:
    """Post large probes until one is refused. SQLite writes into WAL pages it already holds, so
    the first writes after the disk fills may still succeed; the slack runs out within megabytes."""
    n = 0
    while time.monotonic() < until:
        n += 1
        headers, body = binary_request("test.disk.full", {"n": n, "pad": "x" * PROBE_BYTES})
        response = requests.post(url, headers=headers, data=body, timeout=10)
        if response.status_code != 202:
            return response
    return None


def test_a_full_disk_is_answered_with_503_and_nothing_accepted_is_lost(
    shop: ShopUp, broker_dir: tuple[Path, Path], account: Any
) -> None:
    _, folder = broker_dir
    client = ShopClient(shop.endpoints)
    broker_pid = shop.pid_of("broker")
    load = SagaLoad(shop, client, "disk-full", orders=ORDERS, rate=RATE).start()
    load.wait_until(0.3)
    filler = fill(folder)
    full_at = time.monotonic()
    try:
        assert free_bytes(folder) < 64 * 1024
        time.sleep(1.0)
        during = _probe_until_refused(shop.broker_url, until=full_at + FULL_SECONDS)
        time.sleep(max(0.0, FULL_SECONDS - (time.monotonic() - full_at)))
    finally:
        filler.unlink()
    result = load.account(
        account(f"broker disk full {FULL_SECONDS:.0f} s (tmpfs)", f"{ORDERS} orders"),
        fault_over_at=time.monotonic(),
    )
    assert during is not None, (
        f"the broker took every probe during {FULL_SECONDS:.0f} s of full disk"
    )
    assert during.status_code == 503, during.text
    assert "could not be stored" in during.json()["error"]
    assert shop.pid_of("broker") == broker_pid, "the broker died instead of answering 503"
    assert result.dead_lettered == 0
