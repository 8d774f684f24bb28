"""Slow, idle, malformed and unusual HTTP clients against a kit service, over raw sockets.

The service's worker (kit/worker.py) reads each request whole before a thread takes
it: a client holding half a request costs a connection, never a thread.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.kit.conftest import serve_kit_app
from wire.limits import MAX_BODY_BYTES, REQUEST_READ_SECONDS

EVENT_HEAD = (
    b"POST / HTTP/1.1\r\nHost: kit\r\nce-specversion: 1.0\r\nce-id: slow-1\r\n"
    b"ce-source: /tests/slow\r\nce-type: io.cloudevents.test\r\n"
    b"Content-Type: application/json\r\n"
)
#: How fast the service must keep answering while slow clients hold connections.
ANSWER_BOUND_SECONDS = 0.1


def event_request(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return EVENT_HEAD + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    app = serve_kit_app(tmp_path_factory.mktemp("slow"))
    url = urlsplit(app.url)
    assert url.hostname is not None and url.port is not None
    yield url.hostname, url.port
    app.stop()


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=REQUEST_READ_SECONDS + 5)


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Answers until `count` final ones came (interim 1xx answers are in the list too), or the
    connection closed."""
    buffer = b""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    while sum(status >= 200 for status, _, _ in answers) < count:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return answers
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            data = sock.recv(65536)
            if not data:
                break
            buffer += data
        body, buffer = buffer[:length], buffer[length:]
        answers.append((status, headers, body))
    return answers


def timed_get(url: str) -> float:
    started = time.monotonic()
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    return time.monotonic() - started


def timed_post(url: str) -> float:
    started = time.monotonic()
    response = requests.post(
        url,
        data=b"{}",
        headers={
            "ce-specversion": "1.0",
            "ce-id": f"quick-{started}",
            "ce-source": "/tests/slow",
            "ce-type": "io.cloudevents.test",
            "Content-Type": "application/json",
        },
        timeout=5,
    )
    assert response.status_code == 202, response.text
    return time.monotonic() - started


def test_256_half_requests_cost_no_thread_and_get_408s(address: tuple[str, int]) -> None:
    url = f"http://{address[0]}:{address[1]}"
    timed_get(f"{url}/healthz")  # warm: the first request of a process is slower
    with ExitStack() as stack:
        stalled = []
        for index in range(256):
            sock = stack.enter_context(connect(address))
            # Half of them stop in the head, half in the body.
            sock.sendall(event_request()[:60] if index % 2 else event_request(b"{" * 10)[:-5])
            stalled.append(sock)
        started = time.monotonic()
        time.sleep(0.5)  # every stalled request has reached the service
        health = [timed_get(f"{url}/healthz") for _ in range(20)]
        posts = [timed_post(url) for _ in range(20)]
        assert max(health) < ANSWER_BOUND_SECONDS, health
        assert max(posts) < ANSWER_BOUND_SECONDS, posts
        for sock in stalled:
            answers = read_answers(sock, 1)
            assert [status for status, _, _ in answers] == [408]
            assert json.loads(answers[0][2]) == {
                "error": f"the request was not sent whole within {REQUEST_READ_SECONDS:g} s",
                "limit": int(REQUEST_READ_SECONDS),
            }
            assert sock.recv(1) == b"", "the connection is closed after a 408"
        assert time.monotonic() - started < REQUEST_READ_SECONDS + 3


def test_a_request_sent_slowly_but_whole_is_answered(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        for byte in event_request(b'{"slow": true}'):
            sock.sendall(bytes([byte]))
        assert [status for status, _, _ in read_answers(sock, 1)] == [202]


def test_a_malformed_chunked_body_is_a_400_in_json_after_earlier_answers(
    address: tuple[str, int],
) -> None:
    with connect(address) as sock:
        bad = EVENT_HEAD.replace(b"slow-1", b"slow-2") + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        sock.sendall(event_request() + bad)
        answers = read_answers(sock, 2)
        assert [status for status, _, _ in answers] == [202, 400]
        assert answers[1][1]["content-type"] == "application/json"
        assert "chunk" in json.loads(answers[1][2])["error"]
        assert sock.recv(1) == b""


def test_a_chunked_event_is_taken(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        head = EVENT_HEAD.replace(b"slow-1", b"slow-3") + b"Transfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head + b"1\r\n{\r\n")
        time.sleep(0.2)
        sock.sendall(b"1\r\n}\r\n0\r\n\r\n")
        assert [status for status, _, _ in read_answers(sock, 1)] == [202]


def test_100_continue_is_sent_once_and_only_within_limits(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        head = event_request(b"{}", extra=b"Expect: 100-continue\r\n")[:-2]
        sock.sendall(head)
        interim = sock.recv(64)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        assert [status for status, _, _ in read_answers(sock, 1)] == [202]
    with connect(address) as sock:
        over = EVENT_HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (
            MAX_BODY_BYTES + 1
        )
        sock.sendall(over)
        answers = read_answers(sock, 1)
        assert [status for status, _, _ in answers] == [413]
        assert json.loads(answers[0][2]) == {
            "error": f"the body exceeds {MAX_BODY_BYTES} bytes",
            "limit": MAX_BODY_BYTES,
        }


def test_what_gunicorn_refuses_is_answered_in_json(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: kit\r\nBad Header: x\r\n\r\n")
        (answer,) = read_answers(sock, 1)
        assert answer[0] == 400
        assert answer[1]["content-type"] == "application/json"
        assert len(answer[2]) < 200 and "error" in json.loads(answer[2])


def test_an_attribute_header_sent_twice_is_a_400_naming_it(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(event_request(extra=b"ce-partitionkey: 1\r\nce-partitionkey: 2\r\n"))
        (answer,) = read_answers(sock, 1)
        assert answer[0] == 400
        assert json.loads(answer[2]) == {
            "error": "header ce-partitionkey appears more than once",
            "attribute": "partitionkey",
        }


def test_options_is_the_webhook_handshake(address: tuple[str, int]) -> None:
    response = requests.options(
        f"http://{address[0]}:{address[1]}/",
        headers={"WebHook-Request-Origin": "broker.example"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "*"
    assert response.headers["WebHook-Allowed-Rate"] == "*"
    assert "Content-Type" not in response.headers


def test_an_attribute_header_that_wsgi_would_drop_is_a_400_naming_it(
    address: tuple[str, int],
) -> None:
    with connect(address) as sock:
        sock.sendall(event_request(extra=b"ce-snake_case: 1\r\n"))
        (answer,) = read_answers(sock, 1)
        assert answer[0] == 400
        assert json.loads(answer[2])["attribute"] == "snake_case"
