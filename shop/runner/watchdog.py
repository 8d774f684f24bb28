"""Stops `shop up`'s processes when `shop up` itself dies without stopping them (e.g. `kill -9`).

`shop up` starts `python -m shop.runner.watchdog GRACE` in a session of its own with the read end
of a pipe as stdin and keeps the only write end, on which it announces each process group it
starts (`+<pgid>`) and each one that has ended (`-<pgid>`). However `shop up` ends, the kernel
closes the write end; the watchdog then sends SIGTERM to every group still announced, SIGKILL to
what is left after GRACE seconds, and exits. A normal stop forgets every group first, so the
watchdog exits at once. This covers every process of a group (gunicorn's workers too), which
prctl(PR_SET_PDEATHSIG) would not, and works on macOS as well.

This module is run as a program; keep its imports to the standard library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time


class Watchdog:
    """`shop up`'s side: start the watchdog process and tell it about process groups."""

    def __init__(self, python: str, grace: float) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [python, "-m", "shop.runner.watchdog", str(grace)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)
        self._closed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def watch(self, pgid: int) -> None:
        """A process group to stop should `shop up` die."""
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        """A process group that has ended (its number may be reused by someone else)."""
        self._send(f"-{pgid}\n")

    def close(self, timeout: float = 2.0) -> None:
        """Let the watchdog go (after every group was forgotten) and reap it."""
        if not self._closed:
            self._closed = True
            os.close(self._write_end)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _send(self, line: str) -> None:
        if self._closed:
            return
        try:
            os.write(self._write_end, line.encode())
        except BrokenPipeError:  # the watchdog died; nothing to tell
            self._closed = True
            os.close(self._write_end)


def stop_groups(groups: set[int], grace: float) -> int:
    """SIGTERM each group, SIGKILL what is left after `grace`; how many groups were alive."""
    alive = {pgid for pgid in groups if _signal(pgid, signal.SIGTERM)}
    deadline = time.monotonic() + grace
    remaining = set(alive)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = {pgid for pgid in remaining if group_alive(pgid)}
    for pgid in remaining:
        _signal(pgid, signal.SIGKILL)
    return len(alive)


def group_alive(pgid: int) -> bool:
    """Whether a process group has a member that has not exited (zombies do not count)."""
    members = live_group_members(pgid)
    return bool(members) if members is not None else _signal(pgid, 0)


def live_group_members(pgid: int) -> list[int] | None:
    """The pids of a group's members that are not zombies; None where /proc is not there.

    An exited process stays a zombie until its parent (or init) reaps it, and `kill(-pgid, 0)`
    still finds it; only /proc tells a zombie from a live process.
    """
    proc = "/proc"
    if not os.path.isdir(f"{proc}/self"):
        return None
    members = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:  # it exited while we looked
            continue
        # After "pid (comm)": state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


def _signal(pgid: int, number: int) -> bool:
    """Send `number` to a group; False when the group no longer exists."""
    try:
        os.killpg(pgid, number)
    except ProcessLookupError:
        return False
    except PermissionError:  # the number now belongs to someone else's group
        return False
    return True


def main(argv: list[str]) -> int:
    grace = float(argv[1]) if len(argv) > 1 else 5.0
    # In a session of its own no terminal signal reaches it; a stray SIGINT must not either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
    if groups:
        stopped = stop_groups(groups, grace)
        if stopped:
            with contextlib.suppress(OSError):
                sys.stderr.write(
                    f"shop up watchdog: shop up ended without stopping its processes; "
                    f"stopped {stopped} process group(s)\n"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
