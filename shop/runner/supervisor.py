"""One supervised process: started in its own process group, output prefixed and logged,
restarted with back-off when it dies, stopped with SIGTERM then SIGKILL.

A process group plays the part of a container: when its main process exits, whatever is left
in the group is killed, as the kubelet would tear the container down; and stopping sends
SIGTERM to the whole group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shop.runner.console import STATUS_PREFIX, Console
from shop.runner.plan import ProcessPlan
from shop.runner.watchdog import Watchdog

# A line longer than this is shown in pieces rather than held in memory.
_MAX_LINE = 64 * 1024
# After the main process exits, how long output still in the pipe may take to arrive.
_DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off between restarts: first, first*2, first*4 ... up to `cap` seconds.

    A process that ran for `stable_after` seconds before dying starts the sequence again.
    """

    first: float = 1.0
    cap: float = 30.0
    stable_after: float = 10.0

    def delay(self, failures_in_a_row: int) -> float:
        """The wait before restart number `failures_in_a_row` of a run of quick failures."""
        return float(min(self.first * 2 ** max(failures_in_a_row - 1, 0), self.cap))


def describe_exit(returncode: int) -> str:
    """`exited with status 1`, `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


class ManagedProcess:
    """Runs a ProcessPlan until stopped, restarting it whenever it dies."""

    def __init__(
        self,
        plan: ProcessPlan,
        *,
        cwd: Path,
        console: Console,
        log_path: Path,
        watchdog: Watchdog,
        policy: RestartPolicy,
        on_change: Callable[[], None],
        is_ready: Callable[[ManagedProcess], Awaitable[bool]],
    ) -> None:
        self.plan = plan
        self.name = plan.name
        self.log_path = log_path
        self.restarts = 0
        self.pid: int | None = None
        self._cwd = cwd
        self._console = console
        self._watchdog = watchdog
        self._policy = policy
        self._on_change = on_change
        self._is_ready = is_ready
        self._popen: subprocess.Popen[bytes] | None = None
        self._exited = asyncio.Event()
        self._stopping = asyncio.Event()
        self._log: BinaryIO | None = None
        self._tail: deque[str] = deque(maxlen=200)

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.returncode is None

    def snapshot(self) -> dict[str, object]:
        """What processes.json says about this process."""
        return {"pid": self.pid, "pgid": self.pid, "restarts": self.restarts, "url": self.plan.url}

    def tail(self, lines: int = 20) -> list[str]:
        """The last lines this process wrote in this run of `shop up`."""
        return list(self._tail)[-lines:]

    async def supervise(self) -> None:
        """Start the process and restart it with back-off each time it dies, until stop()."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        failures_in_a_row = 0
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                ending = await self._run_once()
                if self._stopping.is_set():
                    break
                ran = time.monotonic() - started
                failures_in_a_row = 1 if ran >= self._policy.stable_after else failures_in_a_row + 1
                delay = self._policy.delay(failures_in_a_row)
                self._status(
                    f"{self.name} {ending} after {ran:.1f}s; "
                    f"restarting in {delay:g}s (restart {self.restarts + 1})"
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    break
                self.restarts += 1
        finally:
            self._log.close()

    async def stop(self, grace: float) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds; no restart after it."""
        self._stopping.set()
        if not self.running:
            return
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._exited.wait(), grace)
        except TimeoutError:
            self._status(f"{self.name} did not stop within {grace:g}s; sending SIGKILL")
            self._signal_group(signal.SIGKILL)
            await self._exited.wait()

    def kill_now(self) -> None:
        """SIGKILL the group at once (a second Ctrl-C)."""
        self._stopping.set()
        if self.running:
            self._signal_group(signal.SIGKILL)

    async def _run_once(self) -> str:
        """Run the process once; a description of how it ended."""
        self._exited.clear()
        read_end, write_end = os.pipe()
        try:
            self._popen = subprocess.Popen(
                self.plan.argv,
                cwd=self._cwd,
                env=dict(self.plan.env),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,
            )
        except OSError as error:
            os.close(read_end)
            self._status(f"{self.name} could not start: {error}")
            self._exited.set()
            return "could not start"
        finally:
            os.close(write_end)
        self.pid = self._popen.pid
        self._watchdog.watch(self.pid)
        self._status(f"{self.name} started (pid {self.pid})")
        self._on_change()
        reader = asyncio.create_task(self._pump(read_end))
        announcer = asyncio.create_task(self._announce_ready()) if self.restarts else None
        try:
            returncode = await _wait_for_exit(self._popen)
        finally:
            # The container is gone with its main process: kill whatever it left behind.
            self._signal_group(signal.SIGKILL)
            self._watchdog.forget(self.pid)
            if announcer is not None:
                announcer.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), _DRAIN_SECONDS)
            reader.cancel()
            self._exited.set()
            self._on_change()
        return describe_exit(returncode)

    async def _announce_ready(self) -> None:
        """After a restart, say when the process answers again."""
        while not await self._is_ready(self):
            await asyncio.sleep(0.1)
        self._status(f"{self.name} is ready again (pid {self.pid}, restart {self.restarts})")

    async def _pump(self, fd: int) -> None:
        """Copy the process's output, line by line, to the terminal and its log file."""
        loop = asyncio.get_running_loop()
        pending = b""
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            nonlocal pending
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._emit(pending)
                    pending = b""
                if not done.done():
                    done.set_result(None)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._emit(line)
            while len(pending) > _MAX_LINE:
                self._emit(pending[:_MAX_LINE])
                pending = pending[_MAX_LINE:]

        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
        try:
            await done
        finally:
            loop.remove_reader(fd)
            if pending:
                self._emit(pending)
            os.close(fd)

    def _emit(self, raw: bytes) -> None:
        text = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        self._tail.append(text)
        self._console.line(self.name, text)
        if self._log is not None and not self._log.closed:
            self._log.write(raw + b"\n")
            self._log.flush()

    def _status(self, message: str) -> None:
        """A status line about this process: on the terminal and in its log."""
        self._console.status(message)
        if self._log is not None and not self._log.closed:
            self._log.write(f"{STATUS_PREFIX}{message}\n".encode())
            self._log.flush()

    def _signal_group(self, number: int) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, number)


async def _wait_for_exit(popen: subprocess.Popen[bytes]) -> int:
    """Wait, without blocking the loop, for the process to exit; reap it; its return code.

    A pidfd (Linux 5.3+) becomes readable when the process exits; elsewhere, poll.
    """
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        while popen.poll() is None:
            await asyncio.sleep(0.05)
        return popen.returncode
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return popen.wait()
