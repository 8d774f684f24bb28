"""The broker's HTTP server over real sockets: keep-alive, pipelining, limits, 100-continue."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from shop.broker.http_server import HttpServer, Request, Response
from tests.support.processes import free_port


async def echo(request: Request) -> Response:
    if request.path == "/slow":
        await asyncio.sleep(0.2)
    body = f"{request.method} {request.path}?{request.query_string} {len(request.body)}".encode()
    return Response(200, body, headers=(("X-Seen", request.header("x-tag") or "-"),))


@pytest.fixture
def port() -> Iterator[int]:
    """An HttpServer serving `echo` in a thread's event loop."""
    chosen = free_port()
    loop = asyncio.new_event_loop()
    server = HttpServer(echo, max_body_bytes=1000)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start("127.0.0.1", chosen))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    yield chosen
    asyncio.run_coroutine_threadsafe(server.stop(1), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


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
