"""Real processes for tests: free ports, a gunicorn-served app, polling with a deadline."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `probe` until it returns something other than None/False; fail with the last result."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
        except Exception as error:  # the thing may not be up yet
            result, last = None, error
        else:
            last = result
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or probe}: {last!r}"
            )
        time.sleep(interval)


class ServedApp:
    """A WSGI app factory served by gunicorn with the services' config, on a free port."""

    def __init__(
        self,
        app: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._app = app
        self._env = dict(env or {})
        self._cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> ServedApp:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **self._env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "python:kit.gunicorn_conf", self._app],
            env=env,
            cwd=self._cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self._healthy, timeout=timeout, what=f"{self._app} /healthz ({self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self._app} exited: {self.log_path.read_text()[-3000:]}")
        return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @contextmanager
    def explained(self) -> Iterator[None]:
        """Turn a refused or cut connection into a failure that says how the server is and
        what it logged (a server that answered /healthz and then went away)."""
        try:
            yield
        except requests.ConnectionError as error:
            state = "running" if self.process and self.process.poll() is None else "exited"
            if self.process is not None and self.process.returncode is not None:
                state = f"exited with {self.process.returncode}"
            raise AssertionError(
                f"{self._app} on {self.url} ({state}): {error}\n{self.logs()[-4000:]}"
            ) from error
