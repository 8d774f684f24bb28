"""A real SMTP server for tests (aiosmtpd): keeps what it receives, optional TLS and login; it
can defer mails (451, or 421 and hang up), and run a test's fault as it takes a mail."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port

REFUSED_MARK = "bounce"  # recipients whose address contains it are refused with 550
USERNAME, PASSWORD = "shop", "secret"


@dataclass
class Received:
    """What the server kept and saw: each mail as parsed, the connections (one EHLO each), the
    recipients it refused, and when each mail's data arrived (kept or deferred). STARTTLS makes
    two EHLOs on one connection."""

    mails: list[Message] = field(default_factory=list)
    connections: int = 0
    refusals: int = 0
    data_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def all(self) -> list[Message]:
        with self.lock:
            return list(self.mails)


@dataclass
class Script:
    """What the server does besides keeping mails, set by a test."""

    #: Answer this many mails' data with 451 (try again later) before keeping any.
    deferrals: int = 0
    #: Answer this many mails' data with 421 (the client then closes the connection).
    hang_ups: int = 0
    #: Runs (in the server's thread) when a mail's data has arrived, before the server answers
    #: 250: a test's fault, such as the database failing right after the server took the mail.
    on_accept: Callable[[], None] | None = None


class _KeepingHandler:
    def __init__(self, received: Received, script: Script) -> None:
        self.received = received
        self.script = script

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.received.lock:
            self.received.connections += 1
        return responses

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if REFUSED_MARK in address:
            with self.received.lock:
                self.received.refusals += 1
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        script = self.script
        with self.received.lock:
            self.received.data_times.append(time.monotonic())
        if script.deferrals > 0:
            script.deferrals -= 1
            return "451 4.3.0 try again later (the test says so)"
        if script.hang_ups > 0:
            script.hang_ups -= 1
            return "421 4.3.2 closing the connection (the test says so)"
        if script.on_accept is not None:
            script.on_accept()
        with self.received.lock:
            self.received.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class MailServer:
    """An SMTP server on a free port: plain, STARTTLS or implicit TLS; login when asked."""

    def __init__(
        self,
        *,
        tls: str = "none",
        certificate: Path | None = None,
        login: bool = False,
        port: int | None = None,
    ) -> None:
        self.received = Received()
        self.script = Script()
        self.port = port or free_port()
        kwargs: dict[str, Any] = {}
        if tls != "none":
            assert certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certificate, certificate.with_suffix(".key"))
            kwargs["ssl_context" if tls == "tls" else "tls_context"] = context
            if tls == "starttls":
                kwargs["require_starttls"] = True
        if login:
            kwargs["authenticator"] = _authenticate
            if tls == "tls":
                # aiosmtpd cannot tell that a socket it was handed is TLS: allow AUTH on it.
                kwargs["auth_require_tls"] = False
            else:
                kwargs["auth_required"] = True
        self._controller = Controller(
            _KeepingHandler(self.received, self.script),
            hostname="127.0.0.1",
            port=self.port,
            **kwargs,
        )

    def __enter__(self) -> MailServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def self_signed_certificate(directory: Path) -> Path:
    """A certificate (and its .key) for 127.0.0.1 and localhost, made with the openssl CLI."""
    certificate = directory / "server.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(certificate.with_suffix(".key")),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate
