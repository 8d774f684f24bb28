"""A real HTTP server that answers Kubernetes API requests with recorded responses.

`tests/fixtures/k8s/<scenario>/<request path>.json` is the body; a `kind: Status` body is an
error answered with its `code`. A request without the kubeconfig's token gets the 401 the API
server gives; a path with no recording gets its 404.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
TOKEN = "recorded-test-token"
CONTEXT = "kind-shop"


def status(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class RecordedApiServer:
    """Serves one scenario on a free port; `requests` lists the paths asked for."""

    def __init__(self, scenario: str) -> None:
        self.root = FIXTURES / scenario
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                server.requests.append(path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, status(401, "Unauthorized", "Unauthorized"))
                    return
                recording = server.root / (quote(path.strip("/"), safe="/.-_") + ".json")
                if not recording.is_file():
                    missing = "the server could not find the requested resource"
                    self._send(404, status(404, "NotFound", missing))
                    return
                body = json.loads(recording.read_text())
                code = body.get("code", 200) if body.get("kind") == "Status" else 200
                self._send(int(code), body)

            def _send(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordedApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, path: Path, token: str = TOKEN) -> Path:
        """A kubeconfig whose current context is this server, with a bearer token."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "recorded", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": "recorded", "user": "tester", "namespace": "shop"},
                }
            ],
            "current-context": CONTEXT,
        }
        path.write_text(yaml.safe_dump(document))
        return path
