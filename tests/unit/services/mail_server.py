"""A real SMTP server for tests (aiosmtpd): keeps what it receives, optional TLS and login."""

from __future__ import annotations

import ssl
import subprocess
import threading
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
    """What the server kept: each mail as parsed, with the envelope's recipients."""

    mails: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def all(self) -> list[Message]:
        with self.lock:
            return list(self.mails)


class _KeepingHandler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if REFUSED_MARK in address:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
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
        self, *, tls: str = "none", certificate: Path | None = None, login: bool = False
    ) -> None:
        self.received = Received()
        self.port = free_port()
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
            _KeepingHandler(self.received), hostname="127.0.0.1", port=self.port, **kwargs
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
