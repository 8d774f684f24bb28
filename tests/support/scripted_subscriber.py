"""A subscriber for broker tests: a real HTTP server that answers by script and records all.

It runs in a thread of the test process (not a subprocess) so that a test can read what it
received, and when, without another channel; the broker reaches it over real HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.processes import wait_for
from wire.http_binding import WireEvent, parse_request, to_binary


@dataclass(frozen=True)
class Received:
    """One request the subscriber got, with the monotonic time it arrived."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def event(self) -> WireEvent:
        """The CloudEvent the request carried (binary or structured)."""
        _, events = parse_request(self.headers.get("content-type"), self.headers.items(), self.body)
        return events[0]


@dataclass(frozen=True)
class Answer:
    """What to answer one request with."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


Script = Callable[[int, Received], Answer]


def always(status: int = 200, headers: dict[str, str] | None = None) -> Script:
    """Answer every request with `status` (and headers) and an empty body."""
    return lambda n, received: Answer(status, dict(headers or {}))


def fail_times(
    failures: int, status: int = 503, then: int = 200, headers: dict[str, str] | None = None
) -> Script:
    """Fail the first `failures` requests with `status` (and headers), then answer `then`."""
    return lambda n, received: Answer(status, dict(headers or {})) if n < failures else Answer(then)


def body(text: bytes, status: int = 200, content_type: str = "text/plain") -> Script:
    """Answer with a body (e.g. a Flask `"OK"` that is not a CloudEvent)."""
    return lambda n, received: Answer(status, {"Content-Type": content_type}, text)


def sleep(seconds: float, status: int = 200) -> Script:
    """Answer only after `seconds` (to outlast a delivery timeout)."""
    return lambda n, received: Answer(status, delay=seconds)


def by_path(scripts: dict[str, Script], default: Script | None = None) -> Script:
    """Pick the script by request path (each path counts its own requests from 0)."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    fallback = default or always(202)

    def answer(n: int, received: Received) -> Answer:
        with lock:
            number = counts.get(received.path, 0)
            counts[received.path] = number + 1
        return scripts.get(received.path, fallback)(number, received)

    return answer


def reply(make: Callable[[int, Received], WireEvent | None]) -> Script:
    """Answer 200 with the event `make` returns, in binary mode (202 and no body for None)."""

    def answer(n: int, received: Received) -> Answer:
        event = make(n, received)
        if event is None:
            return Answer(202)
        headers, payload = to_binary(event)
        return Answer(200, headers, payload)

    return answer


class ScriptedSubscriber:
    """A threaded HTTP/1.1 server on a free port; `script` decides each answer."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or always(202)
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                received = Received(
                    time.monotonic(),
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    payload,
                )
                with subscriber._lock:
                    number = len(subscriber._received)
                    subscriber._received.append(received)
                    subscriber._in_flight += 1
                    subscriber.max_in_flight = max(subscriber.max_in_flight, subscriber._in_flight)
                try:
                    answer = subscriber.script(number, received)
                    if answer.delay:
                        time.sleep(answer.delay)
                finally:
                    with subscriber._lock:
                        subscriber._in_flight -= 1
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    self.close_connection = True  # the broker gave up waiting (timeout)

            def log_message(self, format: str, *args: object) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a connection the broker closed mid-answer is expected in timeout tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, path: str | None = None) -> list[Received]:
        """Every request so far (to `path` only, if given)."""
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def ids(self, path: str | None = None) -> list[str]:
        """The `ce-id` of every binary-mode request so far."""
        return [r.headers.get("ce-id", "") for r in self.received(path)]

    def wait_for(
        self, count: int, timeout: float = 10.0, path: str | None = None
    ) -> list[Received]:
        """The first `count` requests (to `path`), once they have arrived (fails with what did)."""

        def enough() -> list[Received] | None:
            got = self.received(path)
            return got if len(got) >= count else None

        try:
            return wait_for(enough, timeout=timeout, what=f"{count} requests at {self.url}")[:count]
        except AssertionError:
            got = self.received(path)
            raise AssertionError(
                f"{self.url} got {len(got)} of {count} requests within {timeout}s: "
                f"{[(r.path, r.headers.get('ce-id')) for r in got]}"
            ) from None
