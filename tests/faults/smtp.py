"""An SMTP server the test controls (aiosmtpd): it keeps every mail, and can be told to refuse
(451, a temporary failure) or be down (nothing listens on its port)."""

from __future__ import annotations

import threading
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


class _Keeper:
    def __init__(self, server: TestSmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        if self._server.refusing:
            self._server.refused += 1
            return "451 4.3.0 try again later (the test says so)"
        with self._server.lock:
            self._server.kept.append(message_from_bytes(envelope.content))
        return "250 OK"


class TestSmtpServer:
    """Keeps mails in memory; `refuse()`/`accept()` and `down()`/`up()` switch it."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self.port = free_port()
        self.kept: list[Message] = []
        self.lock = threading.Lock()
        self.refusing = False
        self.refused = 0
        self._controller: Controller | None = None

    def up(self) -> None:
        self._controller = Controller(
            _Keeper(self), hostname="127.0.0.1", port=self.port, server_hostname="localhost"
        )
        self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mails(self) -> list[Message]:
        with self.lock:
            return list(self.kept)
