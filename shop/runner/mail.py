"""The local SMTP server of `shop up`: a real server (aiosmtpd) that keeps every mail in a Maildir.

It stands in for the cluster's mail server (Mailpit in the chart). A mail sent to it is really
sent over SMTP and can be read back with the standard library:

    mailbox.Maildir(".shop/mail", create=False)

Each kept message carries the envelope as headers: `X-MailFrom`, `X-RcptTo`, `X-Peer`.
"""

from __future__ import annotations

import asyncio
import socket
from email.message import Message
from pathlib import Path

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

from shop.runner.addresses import LOCAL_HOST
from shop.runner.console import Console

NAME = "smtp"


def listening_socket(host: str = LOCAL_HOST, port: int = 0) -> socket.socket:
    """A bound, listening TCP socket (port 0: a free one), held until the server takes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _KeepingMailbox(Mailbox):
    """aiosmtpd's Maildir handler, saying on the console what it kept."""

    def __init__(self, maildir: Path, console: Console) -> None:
        super().__init__(maildir)
        self._console = console

    def handle_message(self, message: Message) -> None:
        super().handle_message(message)
        self._console.line(
            NAME,
            f"kept a mail from {message['X-MailFrom']} to {message['X-RcptTo']}: "
            f"{message['Subject']!r}",
        )


class LocalMailServer:
    """An SMTP server on the running event loop, delivering to `maildir`."""

    def __init__(self, maildir: Path, sock: socket.socket, console: Console) -> None:
        self.maildir = maildir
        self._sock = sock
        self._console = console
        self._server: asyncio.Server | None = None
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve SMTP on the socket (no TLS, no login: it only listens on this machine)."""
        loop = asyncio.get_running_loop()
        handler = _KeepingMailbox(self.maildir, self._console)
        self._server = await loop.create_server(
            # hostname: without one aiosmtpd asks DNS for this machine's name, which can stall.
            lambda: SMTP(handler, hostname="localhost", loop=loop),
            sock=self._sock,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
