"""A tiny Knative Service for runner tests: says what it was started with and keeps what it gets.

Run as a Knative Service's container command (`python -m tests.support.echo_sink ...`), it
listens on HOST:PORT as Knative's contract asks and answers:

    GET  /healthz  200
    GET  /env      its environment (JSON)
    GET  /argv     its command line, after `$(VAR)` expansion (JSON)
    GET  /process  {"pid", "pgid", "children": [pids it started]}
    GET  /events   every request it was sent, as {"path", "headers", "body"} (JSON)
    POST (any)     recorded; 202 with no body, as a CloudEvents sink answers

It prints `echo-sink <K_SERVICE> listening on HOST:PORT` when it starts and `received <ce-type>`
for each event, so tests can see log prefixing. Options:

    --exit-at-start CODE   print a line and exit with CODE at once (a service that never comes up)
    --spawn-child          start a grandchild process in its process group (cleanup tests)
    --reply                answer each binary-mode event with the same event under a new id
                           (200): a subscriber that replies with the type it consumes, a loop
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.children: list[int] = []


def _handler(state: _State, reply: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._json({"status": "ok"})
            elif self.path == "/env":
                self._json(dict(os.environ))
            elif self.path == "/argv":
                self._json(sys.argv)
            elif self.path == "/process":
                self._json({"pid": os.getpid(), "pgid": os.getpgid(0), "children": state.children})
            elif self.path == "/events":
                with state.lock:
                    self._json(list(state.received))
            else:
                self._json({"error": "not found"}, status=404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            with state.lock:
                state.received.append(
                    {"path": self.path, "headers": headers, "body": body.decode(errors="replace")}
                )
            print(f"received {headers.get('ce-type', '(no ce-type)')}", flush=True)
            if reply and "ce-id" in headers:
                self.send_response(200)
                for name, value in headers.items():
                    if name.startswith("ce-") or name == "content-type":
                        self.send_header(name, uuid.uuid4().hex if name == "ce-id" else value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _json(self, value: object, status: int = 200) -> None:
            payload = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="echo_sink")
    parser.add_argument("--exit-at-start", type=int, default=None)
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--reply", action="store_true")
    parser.add_argument("extra", nargs="*")
    options, _ = parser.parse_known_args(argv)
    name = os.environ.get("K_SERVICE", "?")
    if options.exit_at_start is not None:
        print(f"echo-sink {name}: exiting at start with {options.exit_at_start}", flush=True)
        return int(options.exit_at_start)
    state = _State()
    if options.spawn_child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        state.children.append(child.pid)
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), _handler(state, options.reply))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"echo-sink {name} listening on {host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
