"""`shop up` as a real subprocess for tests: started, waited for, inspected, stopped, checked clean.

    from tests.support.shop_up import ShopUp

    def test_an_order_is_confirmed(tmp_path):
        with ShopUp(REPO_ROOT / "manifests", tmp_path / "state") as shop:
            requests.post(f"{shop.url('order')}/orders", json=...)
            shop.wait_for_line(r"order +\\| .*order.confirmed")

or as a fixture (one `shop up` for a whole module):

    @pytest.fixture(scope="module")
    def shop(tmp_path_factory):
        with ShopUp(REPO_ROOT / "manifests", tmp_path_factory.mktemp("shop") / "state") as shop:
            yield shop

`start()` (or `with`) returns once `shop up` printed `shop up: ready`, and fails with its whole
output if it exits or does not get there in time. `stop()` sends SIGTERM (or the signal given),
waits for `shop up` to exit and fails if any process it started is still alive afterwards;
leftovers are killed before failing, so one test's failure does not leak into the next.

What it offers:

    .endpoints            endpoints.json as a dict (read when ready)
    .url(name)            a service's base URL; .broker_url the first Broker's ingress
    .output()             everything `shop up` printed so far (stdout and stderr)
    .wait_for_line(re)    the first output line matching, with a deadline
    .processes()          processes.json: pid and process group of each process
    .log(name)            a process's log file under <state-dir>/logs/
    .mails() / .wait_for_mails(n)   the mails the local SMTP server kept (email.message objects)
    .stop(sig), .kill(), .wait_exit(), .leftovers(), .process_groups(), .returncode
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from shop.runner.watchdog import live_group_members
from tests.support.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "shop up: ready"
# "shop up: order started (pid 1234)": every process `shop up` starts is announced so.
_STARTED = re.compile(r"^shop up: (?P<name>\S+) started \(pid (?P<pid>\d+)\)$")
_OUTPUT_TAIL = 120


class ShopUpError(AssertionError):
    """`shop up` did not do what the test needed; the message carries its output."""


@dataclass(frozen=True)
class OutputLine:
    """One line `shop up` printed and when it arrived (time.monotonic())."""

    at: float
    text: str


class ShopUp:
    """One `shop up` subprocess with its own state dir and a free broker port.

    `env_overrides` is {service: {KEY: VALUE}} (or ready-made `SERVICE:KEY=VALUE` strings),
    passed as `--env`. `cwd` is where `shop up` (and so every service) runs: the repository,
    so that `python -m tests.support...` and `services.*` import. `env` replaces the
    environment `shop up` itself gets (default: this process's).
    """

    def __init__(
        self,
        manifests_dir: Path,
        state_dir: Path,
        *,
        port: int | None = None,
        env_overrides: Mapping[str, Mapping[str, str]] | Iterable[str] = (),
        profile: Path | None = None,
        ready_timeout: float = 60.0,
        stop_grace: float = 5.0,
        cwd: Path = REPO_ROOT,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        # Absolute: `shop up` runs in `cwd`, this process may not.
        self.manifests_dir = Path(manifests_dir).absolute()
        self.state_dir = Path(state_dir).absolute()
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.cwd = cwd
        self.args = [
            sys.executable,
            "-m",
            "shop.cli",
            "up",
            "--manifests",
            str(self.manifests_dir),
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--ready-timeout",
            str(ready_timeout),
            "--stop-grace",
            str(stop_grace),
            *_env_args(env_overrides),
            *(["--profile", str(profile)] if profile is not None else []),
            *extra_args,
        ]
        self._env = dict(os.environ if env is None else env)
        self.process: subprocess.Popen[bytes] | None = None
        self._lines: list[OutputLine] = []
        self._changed = threading.Condition()
        self._groups: dict[int, str] = {}  # every process group shop up started: pgid -> name
        self._reader: threading.Thread | None = None
        self._endpoints: dict[str, str] | None = None

    # -- starting -------------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> ShopUp:
        """Start `shop up`; with `wait`, return once it is ready (failing with its output)."""
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: a signal meant for pytest does not reach it, and ours reach only it.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="shop-up-output", daemon=True)
        self._reader.start()
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self._force_stop()
                raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait for `shop up: ready`; fail with the output if it exits or takes too long."""
        self.wait_for_line(re.escape(READY_LINE) + "$", timeout=timeout or self.ready_timeout + 15)
        self._endpoints = self.read_endpoints()
        self._remember_watchdog()

    def __enter__(self) -> ShopUp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:  # the test failed: clean up without hiding its error behind ours
            self._force_stop()

    # -- what it runs ---------------------------------------------------------------------

    @property
    def endpoints(self) -> dict[str, str]:
        """endpoints.json, as read when `shop up` became ready."""
        if self._endpoints is None:
            self._endpoints = self.read_endpoints()
        return self._endpoints

    def read_endpoints(self) -> dict[str, str]:
        document: dict[str, str] = json.loads(
            (self.state_dir / "run" / "endpoints.json").read_text()
        )
        return document

    def url(self, service: str) -> str:
        """A Knative Service's base URL (`name` or `namespace/name`)."""
        try:
            return self.endpoints[service]
        except KeyError:
            raise ShopUpError(f"no endpoint {service!r} in {self.endpoints}") from None

    @property
    def broker_url(self) -> str:
        """The first Broker's ingress."""
        return self.url("broker")

    def processes(self) -> dict[str, Any]:
        """processes.json: {name: {"pid", "pgid", "restarts", "url"}}, plus shop up and watchdog."""
        document: dict[str, Any] = json.loads(
            (self.state_dir / "run" / "processes.json").read_text()
        )
        return document

    def pid_of(self, name: str) -> int:
        """The current pid of a process `shop up` runs (its process group has the same id)."""
        return int(self.processes()[name]["pid"])

    def log(self, name: str) -> str:
        """A process's log file (this run's output of it)."""
        path = self.state_dir / "logs" / f"{name.replace('/', '.')}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def maildir(self) -> Path:
        return Path(self.endpoints["maildir"])

    def mails(self) -> list[EmailMessage]:
        """Every mail the local SMTP server kept, oldest first (read from new/ and cur/)."""
        files: list[Path] = []
        for folder in ("new", "cur"):  # a Maildir renames a message into new/ once complete
            with contextlib.suppress(FileNotFoundError):
                files.extend(path for path in (self.maildir / folder).iterdir() if path.is_file())
        found: list[tuple[int, EmailMessage]] = []
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                written = path.stat().st_mtime_ns
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                found.append((written, message))
        return [message for _, message in sorted(found, key=lambda item: item[0])]

    def wait_for_mails(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least `count` mails were kept; fail with what is there."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.mails()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise ShopUpError(f"{len(found)} mails after {timeout}s, wanted {count}")
            time.sleep(0.05)

    # -- output ---------------------------------------------------------------------------

    def output(self) -> str:
        """Everything `shop up` printed so far (stdout and stderr), colour-free."""
        with self._changed:
            return "\n".join(line.text for line in self._lines)

    def lines(self) -> list[OutputLine]:
        with self._changed:
            return list(self._lines)

    def wait_for_line(
        self, pattern: str | re.Pattern[str], *, timeout: float = 10.0, after: int = 0
    ) -> tuple[int, re.Match[str]]:
        """The index and match of the first line (from index `after`) matching `pattern`.

        Fails with the output when the deadline passes or `shop up` exits first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self._lines)):
                    match = regex.search(self._lines[index].text)
                    if match:
                        return index, match
                after = max(after, len(self._lines))
                ended = self._reader is not None and not self._reader.is_alive()
                if ended or time.monotonic() > deadline:
                    why = "shop up exited" if ended else f"timed out after {timeout}s"
                    raise ShopUpError(
                        f"{why} waiting for a line matching {regex.pattern!r}\n"
                        + self._output_tail()
                    )
                self._changed.wait(min(0.1, max(deadline - time.monotonic(), 0.001)))

    # -- stopping -------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float | None = None) -> int:
        """Send `sig` to `shop up`, wait for it to exit, check nothing it started is left.

        `timeout` defaults to the stop grace plus a margin. Returns its exit code.
        """
        assert self.process is not None, "start() first"
        timeout = timeout if timeout is not None else self.stop_grace + 10
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._force_stop()
            raise ShopUpError(
                f"shop up did not exit within {timeout}s of {sig.name}\n" + self._output_tail()
            ) from None
        self._join_reader()
        self.assert_nothing_left()
        return code

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for `shop up` to exit on its own (a start that fails); its exit code."""
        assert self.process is not None, "start() first"
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._force_stop()
            raise ShopUpError(
                f"shop up still runs after {timeout}s\n" + self._output_tail()
            ) from None
        self._join_reader()
        return code

    def kill(self) -> None:
        """SIGKILL `shop up` alone (its watchdog is then expected to stop the rest)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def process_groups(self) -> dict[int, str]:
        """Every process group `shop up` announced in this run (restarts too): pgid -> name."""
        self._remember_watchdog()
        with self._changed:
            return dict(self._groups)

    def leftovers(self) -> list[str]:
        """Every process of this run still alive: `name pgid N: pids [...]` (zombies excluded)."""
        alive = []
        if self.process is not None and self.process.poll() is None:
            alive.append(f"shop up (pid {self.process.pid})")
        for pgid, name in sorted(self.process_groups().items()):
            members = _live_members(pgid)
            if members:
                alive.append(f"{name} (process group {pgid}: pids {members})")
        return alive

    def assert_nothing_left(self, timeout: float = 0.0) -> None:
        """Fail (after killing them) if processes of this run are alive after `timeout`."""
        deadline = time.monotonic() + timeout
        left = self.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.leftovers()
        if left:
            self._force_stop()
            raise ShopUpError(f"processes left behind: {'; '.join(left)}\n" + self._output_tail())

    def _force_stop(self) -> None:
        """SIGKILL shop up and every group it started (after a failure: leak nothing)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pgid in list(self._groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self._join_reader()

    # -- internals ------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            text = _ANSI.sub("", raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            started = _STARTED.match(text)
            with self._changed:
                if started:
                    self._groups[int(started["pid"])] = started["name"]
                self._lines.append(OutputLine(time.monotonic(), text))
                self._changed.notify_all()
        self.process.stdout.close()
        with self._changed:
            self._changed.notify_all()

    def _join_reader(self) -> None:
        # The watchdog shares shop up's stderr and may hold it a moment longer.
        if self._reader is not None:
            self._reader.join(timeout=self.stop_grace + 5)

    def _remember_watchdog(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            pgid = int(self.processes()["watchdog"]["pgid"])
            with self._changed:
                self._groups.setdefault(pgid, "watchdog")

    def _output_tail(self) -> str:
        lines = self.output().splitlines()
        shown = "\n".join(lines[-_OUTPUT_TAIL:])
        skipped = (
            f"({len(lines) - _OUTPUT_TAIL} earlier lines left out)\n"
            if len(lines) > _OUTPUT_TAIL
            else ""
        )
        return f"--- shop up output ---\n{skipped}{shown}\n--- end ---"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env_args(overrides: Mapping[str, Mapping[str, str]] | Iterable[str]) -> list[str]:
    if isinstance(overrides, Mapping):
        items = [
            f"{service}:{key}={value}"
            for service, variables in overrides.items()
            for key, value in variables.items()
        ]
    else:
        items = list(overrides)
    return [arg for item in items for arg in ("--env", item)]


def _live_members(pgid: int) -> list[int]:
    members = live_group_members(pgid)
    if members is not None:
        return members
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    return [pgid]
