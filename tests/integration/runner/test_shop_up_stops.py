"""Ctrl-C, SIGTERM, and `shop up` itself killed: everything stops and nothing is left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from tests.support.runner_manifests import (
    broker_manifest,
    echo_service,
    trigger_manifest,
    write_manifests,
)
from tests.support.shop_up import ShopUp

FEW_SECONDS = 5.0


def _manifests(directory: Path) -> Path:
    return write_manifests(
        directory,
        [
            broker_manifest(),
            # --spawn-child: a grandchild in the service's process group must go too.
            echo_service("echo", args=["--spawn-child"]),
            echo_service("audit", args=["--spawn-child"]),
            trigger_manifest("audit-all", "audit"),
        ],
    )


def _grandchildren(shop: ShopUp) -> list[int]:
    return [
        pid
        for name in ("echo", "audit")
        for pid in requests.get(f"{shop.url(name)}/process", timeout=5).json()["children"]
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_process_within_a_few_seconds(
    tmp_path: Path, sig: signal.Signals
) -> None:
    shop = ShopUp(_manifests(tmp_path / "manifests"), tmp_path / "state").start()
    grandchildren = _grandchildren(shop)
    groups = {name: shop.pid_of(name) for name in ("broker", "echo", "audit")}

    started = time.monotonic()
    code = shop.stop(sig)  # fails if any process of the run is left
    elapsed = time.monotonic() - started

    assert code == 0
    assert elapsed < FEW_SECONDS
    assert shop.output().splitlines()[-1] == "shop up: stopped"
    assert f"shop up: {sig.name}: stopping everything" in shop.output()
    assert set(shop.process_groups()) >= set(groups.values())
    assert grandchildren and not any(_alive(pid) for pid in grandchildren)
    assert not (shop.state_dir / "run" / "processes.json").exists()


def test_a_killed_shop_up_leaves_no_process_behind(tmp_path: Path) -> None:
    shop = ShopUp(_manifests(tmp_path / "manifests"), tmp_path / "state", stop_grace=2).start()
    grandchildren = _grandchildren(shop)

    shop.kill()  # SIGKILL: shop up gets no chance to stop anything; its watchdog does

    shop.assert_nothing_left(timeout=2 + FEW_SECONDS)
    assert not any(_alive(pid) for pid in grandchildren)
    assert "shop up watchdog: shop up ended without stopping its processes" in shop.output()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
