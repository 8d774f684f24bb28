"""A service that dies is restarted with back-off (1 s, then 2 s), and `shop up` says so."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from shop.runner.watchdog import live_group_members
from tests.support.processes import wait_for
from tests.support.runner_manifests import echo_service, write_manifests
from tests.support.shop_up import ShopUp

# The back-off waits are 1 s and 2 s; allow for scheduling, not for speed.
TOLERANCE = 0.15


def _pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


def test_a_killed_service_is_restarted_with_back_off_and_the_restart_is_shown(
    tmp_path: Path,
) -> None:
    manifests = write_manifests(
        tmp_path / "manifests", [echo_service("echo", args=["--spawn-child"])]
    )
    with ShopUp(manifests, tmp_path / "state") as shop:
        url = shop.url("echo")
        first = requests.get(f"{url}/process", timeout=5).json()

        os.kill(first["pid"], signal.SIGKILL)  # the main process only, as a crash would
        died, _ = shop.wait_for_line(
            r"^shop up: echo was killed by SIGKILL after [\d.]+s; restarting in 1s \(restart 1\)$"
        )
        started, match = shop.wait_for_line(r"^shop up: echo started \(pid (\d+)\)$", after=died)
        shop.wait_for_line(r"^shop up: echo is ready again \(pid \d+, restart 1\)$", after=started)
        lines = shop.lines()
        assert lines[started].at - lines[died].at >= 1.0 - TOLERANCE

        # Its process group went with it, as a container's processes do.
        assert not _pid_alive(first["children"][0])
        assert live_group_members(first["pgid"]) in ([], None)
        second = requests.get(f"{url}/process", timeout=5).json()  # same URL, new process
        assert second["pid"] == int(match[1]) != first["pid"]

        os.kill(second["pid"], signal.SIGKILL)  # again, soon after: the wait doubles
        died, _ = shop.wait_for_line(
            r"^shop up: echo was killed by SIGKILL after [\d.]+s; restarting in 2s \(restart 2\)$",
            after=started,
        )
        started, _ = shop.wait_for_line(r"^shop up: echo started \(pid \d+\)$", after=died)
        shop.wait_for_line(r"^shop up: echo is ready again \(pid \d+, restart 2\)$", after=started)
        lines = shop.lines()
        assert lines[started].at - lines[died].at >= 2.0 - TOLERANCE
        assert wait_for(lambda: shop.processes()["echo"]["restarts"] == 2)
        assert "shop up: echo was killed by SIGKILL" in shop.log("echo")
