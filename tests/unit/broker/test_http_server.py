"""The broker's HTTP server over real sockets: keep-alive, pipelining, limits, 100-continue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from shop.broker.http_server import HttpServer, Request, Response
from tests.support.processes import free_port

HANDLED: list[str] = []
RELEASE: list[asyncio.Event] = []


async def echo(request: Request) -> Response:
    HANDLED.append(request.path)
    if request.path == "/slow":
        await asyncio.sleep(0.2)
    if request.path == "/block":
        await RELEASE[0].wait()
    if request.path == "/large":
        return Response(200, b"x" * 1_000_000)
    if request.path == "/inject":
        return Response(200, headers=(("X-Value", "a\r\nX-Injected: yes"),))
    body = f"{request.method} {request.path}?{request.query_string} {len(request.body)}".encode()
    return Response(200, body, headers=(("X-Seen", request.header("x-tag") or "-"),))


@pytest.fixture
def port() -> Iterator[int]:
    """An HttpServer serving `echo` in a thread's event loop."""
    with running_server() as (chosen, _, _):
        yield chosen


@contextlib.contextmanager
def running_server() -> Iterator[tuple[int, HttpServer, asyncio.AbstractEventLoop]]:
    chosen = free_port()
    loop = asyncio.new_event_loop()
    server = HttpServer(echo, max_body_bytes=1000)
    ready = threading.Event()
    HANDLED.clear()
    RELEASE[:] = [asyncio.Event()]

    def run() -> None:
        asyncio.set_event_loop(loop)
        RELEASE[:] = [asyncio.Event()]
        loop.run_until_complete(server.start("127.0.0.1", chosen))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield chosen, server, loop
    finally:
        loop.call_soon_threadsafe(RELEASE[0].set)
        asyncio.run_coroutine_threadsafe(server.stop(1), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def exchange(port: int, raw: bytes, *, until: int = 1, expect_close: bool = False) -> bytes:
    """Send raw bytes; read until `until` responses arrived (or the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while received.count(b"HTTP/1.1 ") < until or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        if expect_close:
            assert sock.recv(1) == b""
        return received


def _complete(received: bytes) -> bool:
    head, _, body = received.rpartition(b"\r\n\r\n")
    length = [
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    ]
    return bool(length) and len(body) >= length[-1]


def test_pipelined_requests_are_answered_in_order_on_one_connection(port: int) -> None:
    raw = (
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /fast?a=1 HTTP/1.1\r\nHost: x\r\nX-Tag: t\r\n\r\n"
    )
    answer = exchange(port, raw, until=2)
    assert answer.index(b"POST /slow? 3") < answer.index(b"GET /fast?a=1 0")
    assert b"X-Seen: t" in answer


def test_a_chunked_body_is_read_whole(port: int) -> None:
    raw = (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert b"POST /c? 5" in exchange(port, raw)


def test_expect_100_continue_is_answered_before_the_body(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"ok")
        assert b"POST /e? 2" in sock.recv(1000)


def test_a_body_over_the_limit_is_refused_with_413_and_the_connection_closed(port: int) -> None:
    raw = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    answer = exchange(port, raw, expect_close=True)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_headers_over_the_limit_are_refused_with_431(port: int) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 70000 + b"\r\n\r\n"
    assert exchange(port, raw, expect_close=True).startswith(b"HTTP/1.1 431 ")


def test_garbage_is_refused_with_400_and_the_connection_closed(port: int) -> None:
    assert exchange(port, b"NOT HTTP AT ALL\r\n\r\n", expect_close=True).startswith(
        b"HTTP/1.1 400 "
    )


def test_head_gets_the_headers_without_the_body(port: int) -> None:
    answer = exchange(
        port, b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", expect_close=True
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: 10" in head  # of "HEAD /h? 0"
    assert body == b""


def test_connection_close_is_honoured(port: int) -> None:
    raw = b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert b"GET /x? 0" in exchange(port, raw, expect_close=True)


def statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in `answer`, in the order they came."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def test_a_refusal_of_a_pipelined_request_comes_after_the_answer_before_it(port: int) -> None:
    raw = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcNOT HTTP\r\n\r\n"
    answer = exchange(port, raw, until=2, expect_close=True)
    assert statuses(answer) == [200, 400]
    assert answer.index(b"POST /slow? 3") < answer.index(b"HTTP/1.1 400")


def test_an_over_limit_content_length_is_refused_in_order_before_the_body_is_sent(
    port: int,
) -> None:
    raw = (
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    )
    answer = exchange(port, raw, until=2, expect_close=True)
    assert statuses(answer) == [200, 413]
    body = json.loads(answer.rpartition(b"\r\n\r\n")[2])
    assert body == {"error": "the body exceeds 1000 bytes", "limit": 1000}


def test_100_continue_waits_for_the_answers_before_it(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        received = b""
        while b"100 Continue" not in received:
            received += sock.recv(1000)
        assert received.index(b"POST /slow? 0") < received.index(b"HTTP/1.1 100 Continue")
        sock.sendall(b"ok")
        while b"POST /e? 2" not in received:
            received += sock.recv(1000)


def test_100_continue_is_not_sent_for_a_body_over_the_limit(port: int) -> None:
    raw = b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    answer = exchange(port, raw, expect_close=True)
    assert statuses(answer) == [413]


def test_an_over_long_url_is_refused_with_414(port: int) -> None:
    raw = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = exchange(port, raw, expect_close=True)
    assert statuses(answer) == [414]
    assert json.loads(answer.rpartition(b"\r\n\r\n")[2])["limit"] == 8192


def test_too_many_headers_are_refused_with_431(port: int) -> None:
    fields = b"".join(b"X-H%d: v\r\n" % n for n in range(300))
    answer = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", expect_close=True)
    assert statuses(answer) == [431]
    assert b"more than 256 headers" in answer


def test_a_connection_is_not_read_while_its_queue_of_requests_is_full() -> None:
    with running_server() as (port, server, loop):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
            time.sleep(0.5)
            # One handled, at most the queue's bound plus one slice's worth parsed; the rest is
            # left in the socket buffers.
            (connection,) = server.connections
            assert HANDLED == ["/block"]
            assert len(connection._waiting) < 16 + 4096 // 30
            loop.call_soon_threadsafe(RELEASE[0].set)
            received = b""
            while received.count(b"HTTP/1.1 200") < 2000:
                chunk = sock.recv(1 << 20)
                assert chunk
                received += chunk
        assert len(HANDLED) == 2000


def test_answers_wait_while_the_client_does_not_read_them() -> None:
    with running_server() as (port, _, _):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
            time.sleep(1.0)
            # Each answer is 1 MB; with nobody reading, the server stops after a few.
            assert len(HANDLED) < 10
            received = 0
            while received < 40 * 1_000_000:
                chunk = sock.recv(1 << 20)
                assert chunk
                received += len(chunk)
        assert len(HANDLED) == 40


def test_a_request_sent_too_slowly_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shop.broker.http_server.REQUEST_READ_SECONDS", 0.5)
    monkeypatch.setattr("shop.broker.http_server._SWEEP_SECONDS", 0.1)
    with (
        running_server() as (port, _, _),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        answer = sock.recv(1000)
        assert statuses(answer) == [408]
        assert 0.4 < time.monotonic() - started < 2
        assert sock.recv(10) == b""


def test_a_header_with_a_line_break_is_never_written(port: int) -> None:
    answer = exchange(port, b"GET /inject HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(answer) == [500]
    assert b"X-Injected" not in answer


def test_header_values_lose_their_surrounding_whitespace(port: int) -> None:
    answer = exchange(port, b"GET /tagged HTTP/1.1\r\nHost: x\r\nX-Tag: \t tagged \t\r\n\r\n")
    assert b"X-Seen: tagged\r\n" in answer


def test_an_http_1_0_request_with_transfer_encoding_is_refused(port: int) -> None:
    raw = b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    answer = exchange(port, raw, expect_close=True)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"HTTP/1.0 request cannot use Transfer-Encoding" in answer


def test_a_refused_head_request_gets_no_body(port: int) -> None:
    raw = b"HEAD /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
    answer = exchange(port, raw, expect_close=True)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Content-Length: " in head
    assert body == b""
