"""Keep-alive HTTP/1.1 connection pools for delivery: asyncio protocols and httptools' parser.

Why not aiohttp's client: one aiohttp client request costs about
125 microseconds of CPU here, this about 25, and delivery is the broker's hottest path (each
event is sent once per matching trigger). Parsing is left to httptools (llhttp, the parser of
Node.js); what is written here is only the pool and the request line.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from shop.broker.http_server import check_header, find_header

# Close an idle connection before the server is likely to (gunicorn keeps them 75 s by default
# in this project; many servers use 5-60 s).
IDLE_SECONDS = 4.0


class HttpError(Exception):
    """No HTTP answer: the connection failed, broke, or the attempt timed out."""


class _ConnectionLost(HttpError):
    """The connection closed before any answer (a kept-alive one may just have expired)."""


@dataclass(frozen=True, slots=True)
class Response:
    """A whole HTTP response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        return find_header(self.headers, name)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.WriteTransport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"invalid HTTP response: {error}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and self._headers_done and not self._framed():
            # A response without length ends when the connection does.
            self._complete()
            return
        self._fail(_ConnectionLost(f"the connection closed before an answer ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.close()
        self._complete()

    def _framed(self) -> bool:
        """Whether the response says where it ends (then a closed connection cut it short)."""
        return any(
            name.lower() in ("content-length", "transfer-encoding") for name, _ in self._headers
        )

    def _complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = Response(self._parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body, self._headers_done = [], [], False
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def send(self, data: bytes, deadline: float, timeout: float) -> Response:
        """Write one request and wait for its response until `deadline` (monotonic)."""
        assert self._transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        # A bare timer is much cheaper than asyncio.timeout() on this hot path.
        timer = loop.call_later(deadline - time.monotonic(), self._time_out, timeout)
        self._transport.write(data)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _time_out(self, timeout: float) -> None:
        self._fail(HttpError(f"no answer within the attempt timeout of {timeout:g}s"))
        self.close()  # a late answer would be read as the next request's

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class _Pool:
    """Kept-alive connections to one origin (the dispatcher bounds how many are busy)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._idle: deque[_Connection] = deque()

    async def request(self, data: bytes, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        connection, reused = await self._connection(timeout)
        try:
            response = await connection.send(data, deadline, timeout)
        except _ConnectionLost:
            connection.close()
            if not reused or time.monotonic() >= deadline:
                raise
            # The server closed a kept-alive connection as we picked it: one fresh try.
            connection, _ = await self._connection(deadline - time.monotonic(), fresh=True)
            try:
                response = await connection.send(data, deadline, timeout)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            connection.close()  # cancelled mid-request: the stream is unusable
            raise
        if not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        return response

    async def _connection(self, timeout: float, fresh: bool = False) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection, True
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(_Connection, self._host, self._port)
        except TimeoutError:
            raise HttpError(f"cannot connect to {self._host}:{self._port} in time") from None
        except OSError as error:
            raise HttpError(f"cannot connect to {self._host}:{self._port}: {error}") from None
        return connection, False

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """Header lines as they go on the wire (callers reuse them for every request they fit).

    A field holding a control character is refused (HeaderError): CR or LF would let a value
    add header lines of its own to the request.
    """
    lines = []
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


class HttpClient:
    """POSTs to any http:// URL over per-origin keep-alive pools."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, int], _Pool] = {}
        self._targets: dict[str, tuple[_Pool, bytes]] = {}

    async def post(self, url: str, headers: bytes, body: bytes, timeout: float) -> Response:
        """POST `body` with `headers` (from `encode_headers`); HttpError if no answer in time."""
        pool, head = self._target(url)
        request = b"%sContent-Length: %d\r\n%s\r\n%s" % (head, len(body), headers, body)
        return await pool.request(request, timeout)

    def _target(self, url: str) -> tuple[_Pool, bytes]:
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise HttpError(f"cannot deliver to {url!r}: only http:// URLs are supported")
            port = parts.port or 80
            key = (parts.hostname, port)
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _Pool(parts.hostname, port)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode("latin-1")
            found = self._targets[url] = (pool, head)
        return found

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
