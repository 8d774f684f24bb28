"""The services' gunicorn worker: gthread, but a thread only gets a request that is all there.

gunicorn's gthread worker hands a connection to a thread as soon as it is readable, and the
thread then blocks reading the rest of the request: eight clients that each send half a header
and wait take every thread of a service, and `/healthz` stops answering. This worker reads each
request in its event loop first, without blocking (`RequestReader`: limits and framing checked
there), and submits it to the thread pool only once it is complete:

- a request that never completes costs a buffer until REQUEST_READ_SECONDS have passed since
  its first byte, then gets a 408; an idle kept-alive connection closes after `keepalive`;
- a refused request (400, 408, 413, 414, 431) is answered from the loop with a JSON body, and
  the connection closed; errors gunicorn's own parser finds are answered in JSON too;
- `Expect: 100-continue` is answered from the loop once the head is in and within limits;
- buffered requests share a budget (MAX_BUFFERED_BYTES); past it, a request goes to a thread
  as it is, whose reads then time out after REQUEST_READ_SECONDS;
- requests given to the threads and not yet answered are bounded (MAX_QUEUED_REQUESTS, by
  default four per thread): past it, a request is answered 429 with Retry-After from the loop,
  so that overload is answered (the broker and the outbox relay retry after it) rather than
  queued without limit. The probes (/healthz, /readyz) and /metrics always get a thread.

In a cluster, Knative's queue-proxy stands in front of the container: its Go reverse proxy reads
each request head in a goroutine of its own, so an idle or half-sent head costs the service
nothing, but it streams bodies through, so a slow body would still hold a thread here without
this worker.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import selectors
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from kit.request_reader import Refusal, RequestReader
from wire.limits import (
    MAX_BODY_BYTES,
    REQUEST_READ_SECONDS,
    TARGET_TOO_LONG,
    body_too_large,
)

#: What all connections of a worker may hold in requests not yet complete.
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
_RECV_BYTES = 64 * 1024
#: How long a refused connection is read (and its bytes dropped) so the answer is not reset.
_LINGER_SECONDS = 1.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Requests per thread that may wait for one (MAX_QUEUED_REQUESTS overrides the total).
QUEUED_PER_THREAD = 4
OVERLOAD_RETRY_AFTER_SECONDS = 1
_ALWAYS_SERVED = (b"/healthz", b"/readyz", b"/metrics")


@dataclass
class _Reading:
    """A connection whose next request is being read by the loop."""

    conn: BufferedConn
    reader: RequestReader = field(default_factory=RequestReader)
    idle_deadline: float = 0.0
    read_deadline: float | None = None
    continued: bool = False


class BufferedConn(TConn):  # type: ignore[misc]
    """A gthread connection whose first bytes may already have been read by the loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefetched = b""
        self.whole = False
        self.counted = False  # given to a thread and counted against MAX_QUEUED_REQUESTS

    def init(self) -> None:
        first = not self.initialized
        super().init()
        if first:
            _time_reads(self.parser.unreader)
        if self.prefetched:
            self.parser.unreader.unread(self.prefetched)
            self.prefetched = b""


def _time_reads(unreader: Any) -> None:
    """Make gunicorn's socket unreader give up after REQUEST_READ_SECONDS of silence."""
    read = unreader.chunk
    sock = unreader.sock

    def chunk(*args: Any) -> bytes:
        ready, _, _ = select.select([sock], [], [], REQUEST_READ_SECONDS)
        if not ready:
            raise http_errors.NoMoreData(b"")
        data: bytes = read(*args)
        return data

    unreader.chunk = chunk


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with whole requests only reaching the threads (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: dict[int, _Reading] = {}
        self._lingering: dict[int, tuple[socket.socket, float]] = {}
        self._buffered = 0
        self._queued = 0
        configured = os.environ.get("MAX_QUEUED_REQUESTS")
        self.max_queued = int(configured) if configured else QUEUED_PER_THREAD * self.cfg.threads

    # -- connections into the loop -----------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(BufferedConn(self.cfg, client, address, listener.getsockname()))

    def enqueue_req(self, conn: BufferedConn) -> None:
        if conn.whole:
            conn.whole = False
            super().enqueue_req(conn)
            return
        leftover = b""
        if conn.parser is not None:
            leftover = conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        reading = _Reading(conn, idle_deadline=time.monotonic() + self.cfg.keepalive)
        self._reading[conn.sock.fileno()] = reading
        if leftover:
            self._take(reading, leftover)
        if conn.sock.fileno() in self._reading:
            self._readable(reading)

    def _readable(self, reading: _Reading) -> None:
        """Read what the socket has; register it with the poller when it has not enough."""
        conn = reading.conn
        while True:
            try:
                data = conn.sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(reading)
                return
            if not data:
                self._drop(reading)
                return
            self._take(reading, data)
            if conn.sock.fileno() not in self._reading:
                return
        with contextlib.suppress(KeyError):  # registered already
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_data, reading))

    def _on_data(self, reading: _Reading, _sock: Any) -> None:
        self.poller.unregister(reading.conn.sock)
        self._readable(reading)

    def _take(self, reading: _Reading, data: bytes) -> None:
        reader = reading.reader
        if reading.read_deadline is None:
            reading.read_deadline = time.monotonic() + REQUEST_READ_SECONDS
        before = reader.received
        reader.feed(data)
        self._buffered += reader.received - before
        if reader.refusal is not None:
            self._refuse(reading, reader.refusal)
        elif reader.complete:
            self._hand_over(reading)
        elif reader.wants_continue and not reading.continued:
            reading.continued = True
            _send_now(reading.conn.sock, _CONTINUE)
        elif self._buffered > MAX_BUFFERED_BYTES:
            self._hand_over(reading)  # its thread reads the rest, within REQUEST_READ_SECONDS

    def _hand_over(self, reading: _Reading) -> None:
        if self._queued >= self.max_queued and not reading.reader.target.startswith(_ALWAYS_SERVED):
            self._refuse(
                reading,
                Refusal(
                    429,
                    f"the service has {self._queued} requests in hand, its limit; "
                    "try again shortly",
                    self.max_queued,
                ),
                retry_after=OVERLOAD_RETRY_AFTER_SECONDS,
            )
            return
        conn = reading.conn
        self._forget(reading)
        self._queued += 1
        conn.counted = True
        conn.prefetched = reading.reader.request_bytes()
        conn.data_ready = True
        conn.whole = True
        self.enqueue_req(conn)

    def _forget(self, reading: _Reading) -> None:
        sock = reading.conn.sock
        self._reading.pop(sock.fileno(), None)
        self._buffered -= reading.reader.received
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(sock)

    def _drop(self, reading: _Reading) -> None:
        self._forget(reading)
        self.nr_conns -= 1
        reading.conn.close()

    def finish_request(self, conn: Any, fut: Any) -> None:
        if conn.counted:
            conn.counted = False
            self._queued -= 1
        super().finish_request(conn, fut)

    def _refuse(self, reading: _Reading, refusal: Refusal, retry_after: int | None = None) -> None:
        self._forget(reading)
        self.nr_conns -= 1
        sock = reading.conn.sock
        self.log.info("refused a request: %s %s", refusal.status, refusal.message)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        _send_now(sock, error_response(refusal.status, refusal.to_json(), headers))
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self._lingering[sock.fileno()] = (sock, time.monotonic() + _LINGER_SECONDS)
        self.poller.register(sock, selectors.EVENT_READ, self._on_linger)

    def _on_linger(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_lingering(sock)

    def _close_lingering(self, sock: socket.socket) -> None:
        self._lingering.pop(sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(sock)
        sock.close()

    # -- deadlines, checked by gthread's loop every second ------------------------------------

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for reading in list(self._reading.values()):
            if reading.reader.received == 0:
                if now >= reading.idle_deadline:
                    self._drop(reading)
            elif reading.read_deadline is not None and now >= reading.read_deadline:
                self._refuse(
                    reading,
                    Refusal(
                        408,
                        f"the request was not sent whole within {REQUEST_READ_SECONDS:g} s",
                        int(REQUEST_READ_SECONDS),
                    ),
                )
        for sock, deadline in list(self._lingering.values()):
            if now >= deadline:
                self._close_lingering(sock)

    def _keepalive_after(self, conn: BufferedConn, keepalive: bool) -> bool:
        """gthread drains at most 64 KiB of a body the application left unread, and closes
        the connection beyond; here the body is in memory, so it is drained whole (within the
        body limit and the read time, for a request that went to its thread unfinished)."""
        if not keepalive:
            return False
        deadline = time.monotonic() + REQUEST_READ_SECONDS
        return bool(conn.parser.finish_body(deadline=deadline, max_bytes=2 * MAX_BODY_BYTES))

    # -- errors gunicorn's parser finds ------------------------------------------------------

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        status = captured.status()
        if status >= 500:
            body = {"error": "the service failed to handle the request"}
        else:
            body = {"error": _client_error(status, exc)}
        try:
            _send_all(client, error_response(status, body))
        except OSError:
            self.log.debug("could not send the error response")


def error_response(
    status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> bytes:
    """A whole HTTP/1.1 response with a JSON body, after which the connection closes."""
    payload = json.dumps(body).encode()
    reason = HTTPStatus(status).phrase
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + payload


def _client_error(status: int, exc: Exception) -> str:
    if status == 414:
        return TARGET_TOO_LONG.message
    if status == 431:
        return "the request's headers exceed the limits"
    if status == 413:
        return body_too_large().message
    return f"the request is not valid HTTP/1.1 ({type(exc).__name__})"


class _Captured:
    """A socket stand-in that keeps what gunicorn would have written (its HTML error)."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def status(self) -> int:
        try:
            return int(self.data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 500


def _send_now(sock: socket.socket, data: bytes) -> None:
    """Write a small answer on a non-blocking socket; what does not fit is dropped."""
    with contextlib.suppress(OSError):
        sock.send(data)


def _send_all(sock: socket.socket, data: bytes) -> None:
    timeout = sock.gettimeout()
    sock.settimeout(REQUEST_READ_SECONDS)
    try:
        sock.sendall(data)
    finally:
        sock.settimeout(timeout)
