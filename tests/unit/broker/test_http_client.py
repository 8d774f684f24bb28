"""The delivery HTTP client against real sockets: keep-alive, body framings, timeouts, failures."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from shop.broker.http_client import HttpClient, HttpError, encode_headers
from tests.support.processes import free_port

Handler = Callable[[socket.socket, int], bool]  # (connection, request number) -> keep open?


class RawServer:
    """A socket server that reads one request at a time and answers with raw bytes."""

    def __init__(self, answer: Handler) -> None:
        self.connections = 0
        self.requests = 0
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(
                    next(
                        (
                            line.split(b":")[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")
                        ),
                        b"0",
                    )
                )
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                buffer = buffer[length:]
                self.requests += 1
                if not self._answer(connection, self.requests):
                    return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(answer: Handler) -> RawServer:
        servers.append(RawServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(raw: bytes, keep_open: bool = True) -> Handler:
    """A handler that sends `raw` to every request, then keeps or closes the connection."""

    def handle(connection: socket.socket, number: int) -> bool:
        connection.sendall(raw)
        return keep_open

    return handle


def post(url: str, *, times: int = 1, timeout: float = 2.0) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        client = HttpClient()
        try:
            answers = []
            for _ in range(times):
                response = await client.post(url, encode_headers([("ce-id", "1")]), b"{}", timeout)
                answers.append((response.status, response.body))
            return answers
        finally:
            client.close()

    return asyncio.run(run())


def test_requests_reuse_one_kept_alive_connection(serve: Callable[[Handler], RawServer]) -> None:
    server = serve(answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"))
    assert post(server.url, times=3) == [(202, b"")] * 3
    assert server.connections == 1


def test_a_chunked_body_is_read_whole(serve: Callable[[Handler], RawServer]) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n3\r\n!!!\r\n0\r\n\r\n"
    )
    server = serve(answer(chunked))
    assert post(server.url, times=2) == [(200, b"OK!!!")] * 2


def test_a_body_without_length_ends_with_the_connection(
    serve: Callable[[Handler], RawServer],
) -> None:
    server = serve(answer(b"HTTP/1.0 200 OK\r\n\r\nuntil close", keep_open=False))
    assert post(server.url, times=2) == [(200, b"until close")] * 2
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced(
    serve: Callable[[Handler], RawServer],
) -> None:
    # The server answers, claims keep-alive, then closes: the next request must still succeed.
    server = serve(answer(b"HTTP/1.1 204 No Content\r\n\r\n", keep_open=False))
    assert post(server.url, times=3) == [(204, b"")] * 3


def test_no_answer_within_the_timeout_is_an_error(serve: Callable[[Handler], RawServer]) -> None:
    server = serve(lambda c, n: True)  # reads the request, never answers
    with pytest.raises(HttpError, match=r"timeout of 0\.2s"):
        post(server.url, timeout=0.2)


def test_a_refused_connection_is_an_error() -> None:
    with pytest.raises(HttpError, match="cannot connect"):
        post(f"http://127.0.0.1:{free_port()}/")


def test_only_http_urls_are_supported() -> None:
    with pytest.raises(HttpError, match="only http"):
        post("https://127.0.0.1/")


def test_a_body_cut_short_by_a_closed_connection_is_an_error(
    serve: Callable[[Handler], RawServer],
) -> None:
    server = serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", keep_open=False))
    with pytest.raises(HttpError, match="closed before an answer"):
        post(server.url)
