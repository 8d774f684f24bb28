"""A subscriber that fails on purpose until it is healed, for forcing dead letters.

    gunicorn -c python:kit.gunicorn_conf \
        "tests.integration.deadletter.flaky_sink:create_app()"

`POST /` (and `POST /<path>`) takes a CloudEvent: while failing it answers FLAKY_STATUS (422 by
default: not retried, so the broker dead-letters it at once) with a body saying why; once healed
it keeps the event and answers 202. `PUT /mode` with {"failing": bool, "status": int} switches;
`GET /received` lists what it kept.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, Response, jsonify, request

from kit.receive import ce_headers
from wire.http_binding import parse_request
from wire.spec import InvalidEvent

FAILURE_BODY = "flaky sink: failing on purpose"


class FlakySink:
    """The sink's switch and what it received."""

    def __init__(self, failing: bool, status: int) -> None:
        self.failing = failing
        self.status = status
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def receive(self, path: str = "") -> Response:
        with self._lock:
            failing, status = self.failing, self.status
        if failing:
            return Response(f"{FAILURE_BODY} ({status})", status=status, mimetype="text/plain")
        try:
            _, events = parse_request(
                request.content_type, ce_headers(request.environ), request.get_data()
            )
        except InvalidEvent as error:
            return Response(error.message, status=400, mimetype="text/plain")
        with self._lock:
            for event in events:
                self.received.append({"path": f"/{path}", **event.attributes})
        return Response(status=202)

    def set_mode(self) -> Response:
        body = request.get_json(force=True)
        with self._lock:
            self.failing = bool(body.get("failing", self.failing))
            self.status = int(body.get("status", self.status))
            return jsonify({"failing": self.failing, "status": self.status})

    def list_received(self) -> Response:
        with self._lock:
            return jsonify(list(self.received))

    def healthy(self) -> Response:
        return jsonify({"status": "ok"})


def create_app() -> Flask:
    sink = FlakySink(
        failing=os.environ.get("FLAKY_FAILING", "1") == "1",
        status=int(os.environ.get("FLAKY_STATUS", "422")),
    )
    app = Flask("flaky_sink")
    app.add_url_rule("/", "receive", sink.receive, methods=["POST"])
    app.add_url_rule("/<path:path>", "receive_path", sink.receive, methods=["POST"])
    app.add_url_rule("/mode", "mode", sink.set_mode, methods=["PUT"])
    app.add_url_rule("/received", "received", sink.list_received)
    app.add_url_rule("/healthz", "healthz", sink.healthy)
    app.add_url_rule("/readyz", "readyz", sink.healthy)
    return app
