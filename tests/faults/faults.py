"""Faults landed on processes `shop up` runs: SIGKILL of a whole process group, SIGSTOP/SIGCONT."""

from __future__ import annotations

import os
import re
import signal
import time

from tests.support.shop_up import ShopUp


def kill(shop: ShopUp, name: str) -> None:
    """SIGKILL the process group (as an OOM kill of the container), and wait until `shop up`
    has started it again and it is ready."""
    old = shop.pid_of(name)
    after = len(shop.lines())
    os.killpg(old, signal.SIGKILL)
    died, _ = shop.wait_for_line(rf"^shop up: {re.escape(name)} was killed by SIGKILL", after=after)
    shop.wait_for_line(rf"^shop up: {re.escape(name)} is ready again \(pid \d+", after=died)
    assert shop.pid_of(name) != old


def hang(shop: ShopUp, name: str, seconds: float) -> None:
    """Freeze the process group for `seconds`: connections are accepted by the kernel and
    nothing answers, as a process stuck in a lock or a long GC pause."""
    group = shop.pid_of(name)
    os.killpg(group, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(group, signal.SIGCONT)
