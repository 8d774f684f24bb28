"""The broker benchmark's wire tools: a lean keep-alive load generator and a recording subscriber.

Both speak just enough HTTP/1.1 for this benchmark, on asyncio streams. They are hand-written
on purpose: on a 2-core machine the load generator and the subscriber share the CPU with the
broker under test, and a general-purpose client or server would cost more than the broker's
own work and hide what is measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SENT_HEADER = b"ce-benchsent: "
_CONTENT_LENGTH = b"content-length:"


@dataclass
class Sent:
    """What a load run sent and how the target answered."""

    started: float = 0.0
    seconds: float = 0.0
    accepted: int = 0
    refused: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


RequestFactory = Callable[[int], bytes]


class _Connection:
    """One keep-alive connection that sends a request and reads the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        self._writer.write(payload)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.lower().split(b"\r\n"):
            if line.startswith(_CONTENT_LENGTH):
                length = int(line[len(_CONTENT_LENGTH) :])
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self._writer.close()


def post_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of a keep-alive POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def closed_loop(
    host: str, port: int, make: RequestFactory, *, connections: int, seconds: float
) -> Sent:
    """`connections` clients posting back to back for `seconds`."""
    sent = Sent(started=time.time())
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds
    pool = [await _Connection.open(host, port) for _ in range(connections)]

    async def client(connection: _Connection) -> None:
        while time.perf_counter() < deadline:
            status, _ = await connection.request(make(next(counter)))
            _count(sent, status)

    clock = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in pool))
    sent.seconds = time.perf_counter() - clock
    for connection in pool:
        connection.close()
    return sent


async def open_loop(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    rate: float,
    seconds: float,
    connections: int = 16,
    sent: Sent | None = None,
) -> Sent:
    """Requests started at a fixed `rate` per second, whatever the answers (latency under load).

    The counts go into `sent` as the answers come, so another task may watch them.
    """
    sent = sent or Sent()
    sent.started = time.time()
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    pool = [await _Connection.open(host, port) for _ in range(connections)]
    for connection in pool:
        free.put_nowait(connection)

    async def one(n: int) -> None:
        connection = await free.get()
        status, _ = await connection.request(make(n))
        free.put_nowait(connection)
        _count(sent, status)

    # Only unfinished requests are held: a long run must not keep a task per request.
    tasks: set[asyncio.Task[None]] = set()
    clock = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = clock + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    sent.seconds = time.perf_counter() - clock
    for connection in pool:
        connection.close()
    return sent


def _count(sent: Sent, status: int) -> None:
    sent.statuses[status] = sent.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        sent.accepted += 1
    else:
        sent.refused += 1


async def fetch_stats(host: str, port: int) -> tuple[list[float], float]:
    """The subscriber's latencies (ms) since the last call (which resets them), and the time
    of the last delivery it received."""
    connection = await _Connection.open(host, port)
    try:
        _, body = await connection.request(
            f"GET /_stats HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode()
        )
    finally:
        connection.close()
    document = json.loads(body)
    return [float(value) for value in document["latencies"]], float(document["last"])


class _Recorder:
    """What the subscriber saw: per request, the ms from the sender's stamp to its arrival."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last: float = 0.0

    def stats(self) -> bytes:
        document = {"count": len(self.latencies), "last": self.last, "latencies": self.latencies}
        self.latencies = []
        return json.dumps(document).encode()


_ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


class _SubscriberProtocol(asyncio.Protocol):
    def __init__(self, recorder: _Recorder) -> None:
        self._recorder = recorder
        self._buffer = b""
        self._transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they do write, though.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].lower()
            length = 0
            start = head.find(_CONTENT_LENGTH)
            if start >= 0:
                stop = head.find(b"\r\n", start)
                length = int(head[start + len(_CONTENT_LENGTH) : stop if stop >= 0 else None])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self._transport is not None
        if head.startswith(b"get /_stats"):
            body = self._recorder.stats()
            self._transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            return
        now = time.time()
        start = head.find(SENT_HEADER)
        if start >= 0:
            stop = head.find(b"\r\n", start)
            sent = int(head[start + len(SENT_HEADER) : stop if stop > 0 else None])
            self._recorder.latencies.append((now * 1e9 - sent) / 1e6)
            self._recorder.last = now
        self._transport.write(_ACCEPTED)


async def serve_subscriber(port: int) -> None:
    """Run the recording subscriber on `port` until cancelled."""
    recorder = _Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _SubscriberProtocol(recorder), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()
