"""Raw HTTP/1.1 over real sockets: bytes written exactly as given, answers read strictly.

A `Plan` is what one client connection does: pieces of bytes to write (with pauses between them,
or held back until the server sent `100 Continue`), and how many final answers end the exchange.
`run_plans` drives several connections at once from one thread (non-blocking sockets and a
selector), so a test sends pipelined requests on parallel connections without threads, and gets
back per connection every answer in the order it arrived, with timing, and how the connection
ended (closed, reset, still open, or silent past the deadline).

The response reader is deliberately strict: a malformed status line, header or body framing
from the server is recorded as `protocol_error`, never glossed over.
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([^\r\n]*))?")
_FIELD_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_READ_BYTES = 256 * 1024


@dataclass(frozen=True)
class Write:
    """A piece of the byte stream of a connection.

    `pause` is how long to wait before writing it. With `after_continue`, the piece waits until
    the server sent an interim `100 Continue` or a final answer since the previous piece, or
    until `pause` seconds passed (a client may send the body anyway, RFC 9110 10.1.1).
    """

    data: bytes
    pause: float = 0.0
    after_continue: bool = False


@dataclass(frozen=True)
class Plan:
    """One connection: what to write and when the exchange is complete.

    `head_answers[i]` says whether the i-th answer answers a HEAD request (it has no body).
    The exchange is complete after `expected_answers` final answers, and, with
    `wait_for_close`, once the server has closed the connection too.
    """

    writes: tuple[Write, ...]
    expected_answers: int
    head_answers: tuple[bool, ...] = ()
    wait_for_close: bool = False


@dataclass
class Answer:
    """One final response, with the interim (1xx) responses that came before it."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    interim: list[int]
    at: float  # time.monotonic() when its last byte arrived

    def header(self, name: str) -> bytes | None:
        """The first value of a header (case-insensitive), or None."""
        wanted = name.lower().encode("ascii")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def media_type(self) -> str:
        value = self.header("content-type")
        if value is None:
            return ""
        return value.split(b";", 1)[0].strip().lower().decode("latin-1")

    def closes(self) -> bool:
        value = self.header("connection")
        return value is not None and b"close" in value.lower()


@dataclass
class Exchange:
    """What happened on one connection."""

    plan: Plan
    answers: list[Answer] = field(default_factory=list)
    closed: bool = False  # the server closed (EOF) or reset the connection
    reset: bool = False
    timed_out: bool = False  # answers were due and nothing arrived for `answer_seconds`
    left_open: bool = False  # complete, but the server did not close when it had to
    protocol_error: str | None = None
    unsent_bytes: int = 0  # bytes the server closed the connection before getting
    started: float = 0.0
    writes_done_at: float | None = None
    ended: float = 0.0
    trailing_interim: list[int] = field(default_factory=list)  # 1xx with no final answer yet

    def describe(self) -> str:
        statuses = [answer.status for answer in self.answers]
        how = (
            "timed out"
            if self.timed_out
            else "reset"
            if self.reset
            else "closed"
            if self.closed
            else "left open"
            if self.left_open
            else "open"
        )
        error = f", protocol error: {self.protocol_error}" if self.protocol_error else ""
        return (
            f"answers {statuses} (expected {self.plan.expected_answers}), {how}"
            f" after {self.ended - self.started:.2f}s, {self.unsent_bytes} bytes unsent{error}"
        )


class _ResponseReader:
    """Incremental, strict HTTP/1.1 response parsing."""

    def __init__(self, head_answers: Sequence[bool]) -> None:
        self._buffer = bytearray()
        self._head_answers = head_answers
        self.answers: list[Answer] = []
        self.interim: list[int] = []
        self.error: str | None = None
        self._pending: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None
        self._body_length: int | None = None  # None: until close
        self._chunked = False

    def feed(self, data: bytes, now: float) -> None:
        self._buffer += data
        while self.error is None and self._step(now):
            pass

    def finish(self, now: float) -> None:
        """The server closed the connection: a body delimited by close ends here."""
        if self.error is not None:
            return
        if self._pending is not None:
            if self._body_length is None and not self._chunked:
                self._complete(bytes(self._buffer), now)
                self._buffer.clear()
            else:
                self.error = "the connection closed in the middle of a response body"
        elif self._buffer:
            self.error = f"the connection closed after a partial response head {self._sample()}"

    def _sample(self) -> str:
        return repr(bytes(self._buffer[:80]))

    def _step(self, now: float) -> bool:
        if self._pending is None:
            return self._read_head()
        return self._read_body(now)

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 256 * 1024:
                self.error = "a response head longer than 256 KiB"
            return False
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        lines = head.split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            self.error = f"malformed status line {lines[0][:80]!r}"
            return False
        status = int(status_line.group(1))
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _FIELD_NAME.fullmatch(name):
                self.error = f"malformed header line {line[:80]!r}"
                return False
            if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
                self.error = f"a control character in header {name!r}"
                return False
            headers.append((name, value.strip(b" \t")))
        if 100 <= status < 200:
            if status == 101:
                self.error = "101 Switching Protocols was never asked for"
                return False
            self.interim.append(status)
            return True
        reason = status_line.group(2) or b""
        self._pending = (status, reason, headers)
        index = len(self.answers)
        no_body = (index < len(self._head_answers) and self._head_answers[index]) or status in (
            204,
            304,
        )
        self._chunked = False
        lengths = {value for name, value in headers if name.lower() == b"content-length"}
        encodings = [value for name, value in headers if name.lower() == b"transfer-encoding"]
        if no_body:
            self._body_length = 0
        elif encodings:
            if lengths:
                self.error = "a response with both Transfer-Encoding and Content-Length"
                return False
            if encodings[-1].strip().lower() != b"chunked":
                self.error = f"a response with Transfer-Encoding {encodings!r}"
                return False
            self._chunked = True
            self._body_length = None
        elif lengths:
            if len(lengths) > 1 or not lengths.copy().pop().isdigit():
                self.error = f"a response with Content-Length {sorted(lengths)!r}"
                return False
            self._body_length = int(lengths.pop())
        else:
            self._body_length = None  # delimited by close
        return True

    def _read_body(self, now: float) -> bool:
        if self._chunked:
            return self._read_chunked(now)
        if self._body_length is None:
            return False  # until close
        if len(self._buffer) < self._body_length:
            return False
        body = bytes(self._buffer[: self._body_length])
        del self._buffer[: self._body_length]
        self._complete(body, now)
        return True

    def _read_chunked(self, now: float) -> bool:
        body = bytearray()
        position = 0
        while True:
            line_end = self._buffer.find(b"\r\n", position)
            if line_end < 0:
                return False
            size_text = bytes(self._buffer[position:line_end]).split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                self.error = f"malformed chunk size {size_text[:40]!r}"
                return False
            size = int(size_text, 16)
            start = line_end + 2
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n", start)
                while trailer_end >= 0 and trailer_end != start:
                    start = trailer_end + 2
                    trailer_end = self._buffer.find(b"\r\n", start)
                if trailer_end < 0:
                    return False
                del self._buffer[: trailer_end + 2]
                self._complete(bytes(body), now)
                return True
            if len(self._buffer) < start + size + 2:
                return False
            if self._buffer[start + size : start + size + 2] != b"\r\n":
                self.error = "a chunk not followed by CRLF"
                return False
            body += self._buffer[start : start + size]
            position = start + size + 2

    def _complete(self, body: bytes, now: float) -> None:
        assert self._pending is not None
        status, reason, headers = self._pending
        self.answers.append(Answer(status, reason, headers, body, self.interim, now))
        self.interim = []
        self._pending = None


@dataclass
class _Driver:
    plan: Plan
    sock: socket.socket
    selector: selectors.BaseSelector
    exchange: Exchange
    reader: _ResponseReader
    next_write: int = 0
    offset: int = 0
    not_before: float = 0.0  # the next piece is not written before this time
    continue_marker: int = 0  # responses seen when a piece started waiting for 100 Continue
    last_progress: float = 0.0  # the last time a byte was written or read
    complete_at: float | None = None
    done: bool = False

    @property
    def writes_left(self) -> bool:
        return self.next_write < len(self.plan.writes)

    def responses_seen(self) -> int:
        reader = self.reader
        interim = sum(len(answer.interim) for answer in reader.answers) + len(reader.interim)
        return len(reader.answers) + interim

    def holding(self, now: float) -> bool:
        """Whether the next piece is held back on purpose (a pause, or waiting for 100)."""
        if not self.writes_left or self.offset > 0:
            return False
        piece = self.plan.writes[self.next_write]
        if piece.after_continue and self.responses_seen() > self.continue_marker:
            return False
        return now < self.not_before

    def wants_to_write(self, now: float) -> bool:
        return self.writes_left and not self.holding(now)


def run_plans(
    address: tuple[str, int],
    plans: Sequence[Plan],
    *,
    answer_seconds: float = 5.0,
    close_seconds: float = 2.0,
    overall_seconds: float = 60.0,
) -> list[Exchange]:
    """Run every plan on its own connection, all at once; one Exchange per plan, in order.

    A connection times out when answers are due and nothing moved (no byte written or read)
    for `answer_seconds`, pauses on purpose excepted. A complete exchange that must end in a
    close is given `close_seconds` for it.
    """
    selector = selectors.DefaultSelector()
    drivers: list[_Driver] = []
    started = time.monotonic()
    try:
        for plan in plans:
            sock = socket.create_connection(address, timeout=5)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            now = time.monotonic()
            driver = _Driver(
                plan,
                sock,
                selector,
                Exchange(plan, started=now),
                _ResponseReader(plan.head_answers),
            )
            driver.last_progress = now
            driver.not_before = now + (plan.writes[0].pause if plan.writes else 0.0)
            drivers.append(driver)
            selector.register(sock, selectors.EVENT_READ, driver)
        while any(not driver.done for driver in drivers):
            now = time.monotonic()
            for driver in drivers:
                if driver.done:
                    continue
                _check_deadlines(driver, now, answer_seconds, close_seconds)
                if not driver.done and now - started > overall_seconds:
                    driver.exchange.timed_out = True
                    _finish(driver, now)
                if not driver.done:
                    events = selectors.EVENT_READ
                    if driver.wants_to_write(now):
                        events |= selectors.EVENT_WRITE
                    if selector.get_key(driver.sock).events != events:
                        selector.modify(driver.sock, events, driver)
            if all(driver.done for driver in drivers):
                break
            for key, events in selector.select(_next_timeout(drivers, now)):
                driver = key.data
                if not driver.done and events & selectors.EVENT_READ:
                    _on_readable(driver)
                if not driver.done and events & selectors.EVENT_WRITE:
                    _on_writable(driver)
    finally:
        for driver in drivers:
            if not driver.done:
                _finish(driver, time.monotonic())
        selector.close()
    return [driver.exchange for driver in drivers]


def _next_timeout(drivers: Sequence[_Driver], now: float) -> float:
    soonest = now + 0.05
    for driver in drivers:
        if not driver.done and driver.holding(now):
            soonest = min(soonest, driver.not_before)
    return max(0.0, soonest - now)


def _on_readable(driver: _Driver) -> None:
    now = time.monotonic()
    try:
        data = driver.sock.recv(_READ_BYTES)
    except BlockingIOError:
        return
    except OSError as error:
        if error.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            raise
        driver.exchange.reset = True
        data = b""
    if not data:
        driver.exchange.closed = True
        driver.reader.finish(now)
        _finish(driver, now)
        return
    driver.last_progress = now
    driver.reader.feed(data, now)
    if driver.reader.error is not None:
        _finish(driver, now)
        return
    if driver.complete_at is None and len(driver.reader.answers) >= driver.plan.expected_answers:
        driver.complete_at = now
    _finish_if_complete(driver, now)


def _on_writable(driver: _Driver) -> None:
    now = time.monotonic()
    if not driver.wants_to_write(now):
        return
    piece = driver.plan.writes[driver.next_write]
    try:
        sent = driver.sock.send(memoryview(piece.data)[driver.offset :])
    except BlockingIOError:
        return
    except OSError as error:
        if error.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            raise
        # The server closed its side: what it answered before that may still be readable.
        _drain(driver, now)
        return
    driver.last_progress = now
    driver.offset += sent
    if driver.offset < len(piece.data):
        return
    driver.next_write += 1
    driver.offset = 0
    if driver.writes_left:
        following = driver.plan.writes[driver.next_write]
        driver.not_before = now + following.pause
        driver.continue_marker = driver.responses_seen()
    else:
        driver.exchange.writes_done_at = now
    _finish_if_complete(driver, now)


def _drain(driver: _Driver, now: float) -> None:
    """Read what the server sent before it closed; the connection is over."""
    driver.sock.setblocking(True)
    driver.sock.settimeout(0.5)
    try:
        while True:
            data = driver.sock.recv(_READ_BYTES)
            if not data:
                break
            driver.reader.feed(data, time.monotonic())
    except OSError:
        driver.exchange.reset = True
    driver.exchange.closed = True
    driver.reader.finish(now)
    _finish(driver, now)


def _finish_if_complete(driver: _Driver, now: float) -> None:
    if driver.complete_at is not None and not driver.writes_left and not driver.plan.wait_for_close:
        _finish(driver, now)


def _check_deadlines(
    driver: _Driver, now: float, answer_seconds: float, close_seconds: float
) -> None:
    if driver.complete_at is not None:
        # Everything expected arrived; what is left is writing (to a server that may have
        # stopped reading) or waiting for its close.
        if now - max(driver.complete_at, driver.last_progress) > close_seconds:
            driver.exchange.left_open = driver.plan.wait_for_close
            _finish(driver, now)
        return
    if driver.holding(now):
        return
    if now - driver.last_progress > answer_seconds:
        driver.exchange.timed_out = True
        _finish(driver, now)


def _finish(driver: _Driver, now: float) -> None:
    if driver.done:
        return
    driver.done = True
    exchange = driver.exchange
    exchange.answers = driver.reader.answers
    exchange.trailing_interim = driver.reader.interim
    exchange.protocol_error = driver.reader.error
    exchange.ended = now
    exchange.unsent_bytes = (
        sum(len(piece.data) for piece in driver.plan.writes[driver.next_write :]) - driver.offset
    )
    with contextlib.suppress(KeyError, ValueError):
        driver.selector.unregister(driver.sock)
    driver.sock.close()
