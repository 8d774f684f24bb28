"""Waiting for processes to answer: `GET /healthz` polled with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import aiohttp

from shop.runner.console import Console
from shop.runner.supervisor import ManagedProcess

_INTERVAL = 0.1
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


class HealthProbe:
    """Asks a process whether it is up: it is when `/healthz` answers with a status below 500.

    A 404 counts as up too: a Knative Service need not have a health endpoint (Knative's
    default readiness probe only checks that the port accepts connections), and an answer
    means it serves HTTP; a 5xx means it is there but not ready.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HealthProbe:
        self._session = aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def answers(self, url: str) -> bool:
        assert self._session is not None, "use HealthProbe as an async context manager"
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def ready(self, process: ManagedProcess) -> bool:
        """Whether a supervised process is running and answers."""
        return process.running and await self.answers(process.plan.health_url)


async def wait_until_ready(
    processes: Sequence[ManagedProcess],
    probe: HealthProbe,
    timeout: float,
    stop: asyncio.Event,
    console: Console,
) -> list[ManagedProcess]:
    """Poll every process until all answer, the deadline passes or a stop is asked for.

    Says on the console when each comes up; returns the processes that never did.
    """
    started = time.monotonic()
    deadline = started + timeout
    waiting = list(processes)
    while waiting and not stop.is_set() and time.monotonic() < deadline:
        answers = await asyncio.gather(*(probe.ready(process) for process in waiting))
        for process, ready in zip(list(waiting), answers, strict=True):
            if ready:
                waiting.remove(process)
                console.status(
                    f"{process.name} answers at {process.plan.url} "
                    f"({time.monotonic() - started:.1f}s)"
                )
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _INTERVAL)
    return waiting
