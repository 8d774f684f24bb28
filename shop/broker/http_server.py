"""The HTTP/1.1 server of the broker's port, on asyncio protocols and httptools' request parser.

Why not aiohttp's server: measured here, aiohttp spends about 65 microseconds of CPU on each
request before the handler runs, this about 20, and the ingress takes every event once. Parsing
(request line, headers, chunked bodies) is httptools' (llhttp, the parser of Node.js); this
module only frames requests and answers:

- answers go out strictly in request order: a request the server refuses itself (too large,
  unreadable, too slow) is answered after every request before it on the connection, and then
  the connection is closed;
- backpressure: a connection stops being read while too many of its requests wait for answers
  (the handler may take its time: the broker's ingress waits while deliveries fall behind) and
  while the client does not read what it was sent (`pause_writing`);
- limits (`wire.limits`): the URL (414), the head's size and field count (431), the body
  (413, refused from Content-Length before it is sent), the time to send a whole request (408);
- `Expect: 100-continue` is answered only when the request is next in line and within limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

import httptools

from wire.errors import Problem
from wire.limits import (
    HEADERS_TOO_LARGE,
    MAX_HEADER_BYTES,
    MAX_HEADER_COUNT,
    MAX_URL_BYTES,
    REQUEST_READ_SECONDS,
    TARGET_TOO_LONG,
    TOO_MANY_HEADERS,
    TRAILERS_TOO_LARGE,
    body_too_large,
)

log = logging.getLogger(__name__)

JSON = "application/json"
IDLE_SECONDS = 75.0
#: Requests of one connection that may wait for their answers before it is no longer read.
MAX_QUEUED_REQUESTS = 16
_SLICE_BYTES = 4096
_SWEEP_SECONDS = 1.0
# What a header field may not hold when this server writes it (CR and LF would split it).
_UNSAFE_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HeaderError(ValueError):
    """A header this server or its client was asked to write holds a control character."""


def check_header(name: str, value: str) -> None:
    """Refuse a header field that would break the message it is written into."""
    if _UNSAFE_HEADER.search(name) or _UNSAFE_HEADER.search(value) or ":" in name:
        raise HeaderError(f"header {name[:40]!r} holds a control character; not written")


def find_header(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of a header (case-insensitive) in a list of fields, or None."""
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """One whole HTTP request."""

    method: str
    path: str
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        return find_header(self.headers, name)

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    @property
    def query(self) -> dict[str, str]:
        """The query parameters (the last value of each)."""
        return dict(parse_qsl(self.query_string))


@dataclass(frozen=True, slots=True)
class Response:
    """What to answer."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None

    def encode(self, head_only: bool, close: bool = False) -> bytes:
        reason = _REASONS.get(self.status, "")
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Length: {len(self.body)}"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        for name, value in self.headers:
            check_header(name, value)
            lines.append(f"{name}: {value}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


Handler = Callable[[Request], Awaitable[Response]]
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class _Incoming:
    """The request being parsed."""

    started: float
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    url_size: int = 0
    size: int = 0
    body_size: int = 0
    wants_continue: bool = False
    head_done: bool = False  # fields after the head are a chunked body's trailers
    trailer_size: int = 0
    body_limit: int = 0  # the body's limit for this request's path, known with its head


@dataclass(frozen=True, slots=True)
class _Queued:
    """A request waiting for its turn, or (with `refusal`) the last answer of the connection."""

    request: Request | None
    keep_alive: bool
    refusal: Response | None = None
    head: bool = False  # the refused request was a HEAD: its answer has no body


class _Refusal(Problem):
    """A request the server answers itself with `status`; the connection then closes."""

    def __init__(self, status: int, message: str, limit: int | None = None) -> None:
        super().__init__(status, message, limit=limit)


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the handler on each in order, answers."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._incoming: _Incoming | None = None
        self._waiting: deque[_Queued] = deque()
        self._busy = False
        self._closing = False
        self._refused = False  # nothing more is read once a refusal is queued
        self._writing_paused = False
        self._reading_paused = False
        self._unread = b""  # read but not yet parsed (while the queue is full)
        self._offset = 0
        self._parsing = False
        self.idle_since = time.monotonic()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._waiting and self._incoming is None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)
        self.update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self.update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.update_reading()
        if not self._busy:
            self._next()

    def data_received(self, data: bytes) -> None:
        if self._refused or self._closing:
            return
        if self._unread:
            self._unread = self._unread[self._offset :] + data
        else:
            self._unread = data
        self._offset = 0
        self._parse()

    def _parse(self) -> None:
        """Feed what was read to the parser, a slice at a time while the queue has room.

        httptools cannot stop in the middle of what it is fed, so a read that holds many small
        requests is fed in slices: the queue outgrows its bound by one slice's worth at most,
        and the rest waits (and reading is paused) until answers make room.
        """
        if self._parsing:
            return
        self._parsing = True
        try:
            while (
                self._offset < len(self._unread)
                and len(self._waiting) < MAX_QUEUED_REQUESTS
                and not self._refused
                and not self._closing
            ):
                end = self._offset + _SLICE_BYTES
                piece = memoryview(self._unread)[self._offset : end]
                self._offset = min(end, len(self._unread))
                self._feed(piece)
        finally:
            self._parsing = False
        if self._offset >= len(self._unread) or self._refused:
            self._unread, self._offset = b"", 0
        self.update_reading()

    def _feed(self, data: memoryview) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(_Refusal(400, "protocol upgrades are not supported"))
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _Refusal):
                self._refuse(cause)
            else:
                log.error("reading a request failed", exc_info=cause)
                self._refuse(_Refusal(400, "the request could not be read"))
        except httptools.HttpParserError as error:
            self._refuse(_Refusal(400, f"invalid HTTP request: {str(error)[:100]}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._incoming = _Incoming(time.monotonic())

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL_BYTES:
            raise _Refusal(*TARGET_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        if incoming.head_done:
            # A chunked body's trailers: bounded on their own, and not kept.
            incoming.trailer_size += len(name) + len(value)
            if incoming.trailer_size > MAX_HEADER_BYTES:
                raise _Refusal(*TRAILERS_TOO_LARGE)
            return
        # RFC 9110 5.5: a field value has no leading or trailing whitespace.
        value = value.strip(b" \t")
        incoming.size += len(name) + len(value)
        if incoming.size > MAX_HEADER_BYTES:
            raise _Refusal(*HEADERS_TOO_LARGE)
        if len(incoming.headers) >= MAX_HEADER_COUNT:
            raise _Refusal(*TOO_MANY_HEADERS)
        incoming.headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.head_done = True
        if (
            self._parser.get_http_version() == "1.0"
            and find_header(incoming.headers, "transfer-encoding") is not None
        ):
            # RFC 9112 6.1: the framing of such a message is faulty.
            raise _Refusal(400, "an HTTP/1.0 request cannot use Transfer-Encoding")
        limit = incoming.body_limit = self._server.body_limit(self._url)
        declared = find_header(incoming.headers, "content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise _Refusal(*body_too_large(limit))
        expect = find_header(incoming.headers, "expect")
        if expect is not None and expect.strip().lower() == "100-continue":
            incoming.wants_continue = True
            self._send_continue_if_next()

    def on_body(self, body: bytes) -> None:
        incoming = self._incoming
        assert incoming is not None
        incoming.body_size += len(body)
        limit = incoming.body_limit
        if incoming.body_size > limit:
            raise _Refusal(*body_too_large(limit))
        incoming.body.append(body)

    def on_message_complete(self) -> None:
        incoming = self._incoming
        assert incoming is not None
        self._incoming = None
        url = httptools.parse_url(self._url)
        request = Request(
            self._parser.get_method().decode("ascii"),
            (url.path or b"/").decode("utf-8", "surrogateescape"),
            (url.query or b"").decode("utf-8", "surrogateescape"),
            incoming.headers,
            b"".join(incoming.body),
        )
        self._waiting.append(_Queued(request, self._parser.should_keep_alive()))
        self.update_reading()
        if not self._busy:
            self._next()

    # answering, in order
    def _send_continue_if_next(self) -> None:
        """`100 Continue` for the request being read, once every earlier one is answered."""
        incoming = self._incoming
        if (
            incoming is not None
            and incoming.wants_continue
            and not self._busy
            and not self._waiting
            and self._transport is not None
            and not self._closing
        ):
            incoming.wants_continue = False
            self._transport.write(_CONTINUE)

    def _next(self) -> None:
        if self._closing or self._writing_paused:
            return
        if not self._waiting:
            self.idle_since = time.monotonic()
            self._send_continue_if_next()
            return
        queued = self._waiting.popleft()
        if self._unread and not self._parsing:
            self._parse()
        else:
            self.update_reading()
        if queued.refusal is not None:
            self._write(queued.refusal.encode(head_only=queued.head, close=True))
            self.close()
            return
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._answer(queued))
        self._server.tasks.add(task)
        task.add_done_callback(self._server.tasks.discard)

    async def _answer(self, queued: _Queued) -> None:
        request = queued.request
        assert request is not None
        try:
            response = await self._server.handler(request)
            encoded = response.encode(head_only=request.method == "HEAD")
        except Exception:
            log.exception("the handler of %s %s failed", request.method, request.path[:200])
            encoded = _error(
                500, "the broker failed to handle the request", self._server.error_headers
            ).encode(head_only=request.method == "HEAD")
        self._busy = False
        if self._closing:
            return
        self._write(encoded)
        if not queued.keep_alive:
            self.close()
            return
        self._next()

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def _refuse(self, refusal: _Refusal) -> None:
        """Queue the server's own answer after those already due, then stop reading."""
        if self._refused:
            return
        self._refused = True
        # llhttp knows the method once the target began (before, it reports method 0, DELETE).
        head = self._incoming is not None and bool(self._url) and self._method() == b"HEAD"
        self._incoming = None
        response = Response(
            refusal.status,
            json.dumps(refusal.to_json()).encode(),
            headers=self._server.error_headers,
            content_type=JSON,
        )
        self._waiting.append(_Queued(None, False, response, head))
        self.update_reading()
        if not self._busy:
            self._next()

    def _method(self) -> bytes:
        method: bytes = self._parser.get_method()
        return method

    def update_reading(self) -> None:
        """Read from the client only while this connection and the server can take more."""
        if self._transport is None or self._closing:
            return
        paused = (
            self._refused
            or self._writing_paused
            or len(self._waiting) >= MAX_QUEUED_REQUESTS
            or self._offset < len(self._unread)
        )
        if paused == self._reading_paused:
            return
        self._reading_paused = paused
        if paused:
            self._transport.pause_reading()
        else:
            self._transport.resume_reading()

    def sweep(self, now: float) -> None:
        """Close an idle connection after IDLE_SECONDS; refuse a request sent too slowly."""
        incoming = self._incoming
        if incoming is not None and not self._refused:
            if now - incoming.started > REQUEST_READ_SECONDS:
                self._refuse(
                    _Refusal(
                        408,
                        f"the request was not complete within {REQUEST_READ_SECONDS:g} seconds",
                    )
                )
        elif self.idle and now - self.idle_since > IDLE_SECONDS:
            self.close()

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...]) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(status, body, headers=headers, content_type=JSON)


class HttpServer:
    """Serves `handler` on a TCP port until `stop()`."""

    def __init__(
        self,
        handler: Handler,
        max_body_bytes: int,
        error_headers: tuple[tuple[str, str], ...] = (),
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.error_headers = error_headers
        #: Paths whose bodies have a limit of their own (the OTLP receiver's).
        self.body_limits = dict(body_limits or {})
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def body_limit(self, url: bytes) -> int:
        """The body limit of a request for `url` (its path's own, else max_body_bytes)."""
        if not self.body_limits:
            return self.max_body_bytes
        path = url.split(b"?", 1)[0].decode("latin-1")
        return self.body_limits.get(path, self.max_body_bytes)

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=1024, reuse_address=True
        )
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Time out slow requests and idle connections (one timer for all, not one per request)."""
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.sweep(now)

    async def stop(self, grace: float) -> None:
        """Stop listening, let answers in progress finish for up to `grace` s, close the rest."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            if connection.idle:
                connection.close()
        if self.tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self.tasks), grace)
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
