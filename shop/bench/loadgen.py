"""An asyncio HTTP load generator: keep-alive connections, closed or open loop, percentiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

RequestFactory = Callable[[int], tuple[dict[str, str], bytes]]


@dataclass
class LoadResult:
    """What one load run achieved."""

    seconds: float
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of request latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))
        return ordered[index] * 1000


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    request: tuple[dict[str, str], bytes],
    result: LoadResult,
) -> None:
    headers, body = request
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except aiohttp.ClientError:
        result.failed += 1
        return
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        result.ok += 1
        result.latencies.append(time.perf_counter() - started)
    else:
        result.failed += 1


async def closed_loop(
    url: str, make_request: RequestFactory, *, connections: int, seconds: float
) -> LoadResult:
    """`connections` clients each posting back to back for `seconds`: the server's throughput."""
    result = LoadResult(seconds)
    counter = iter(range(10**12))
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                await _post(session, url, make_request(next(counter)), result)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        result.seconds = time.perf_counter() - started
    return result


async def open_loop(
    url: str, make_request: RequestFactory, *, rate: float, seconds: float, connections: int = 32
) -> LoadResult:
    """Requests sent at a fixed `rate` per second whatever the answers: latency under that load."""
    result = LoadResult(seconds)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        started = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, url, make_request(n), result)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    return result
