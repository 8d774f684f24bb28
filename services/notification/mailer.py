"""Sending mail: the `Mailer` seam, the SMTP settings and `SmtpMailer` (smtplib)."""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

from kit import ResourceKey
from kit.config import ConfigError

TLS_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class Mail:
    """One mail to send; `message_id` is derived from what the mail is about, not random."""

    to: str
    subject: str
    body: str
    message_id: str


class MailUnavailable(Exception):
    """The mail server cannot take this mail now (a 4xx answer, a broken connection, a timeout):
    the mail waits and is sent again later."""


class MailUnreachable(MailUnavailable):
    """No connection to the mail server (refused, timed out, TLS or login failed): nothing more
    goes through this session until the server is back."""


class MailRefused(Exception):
    """The mail server refused this mail for good (5xx for the recipient or the content)."""


class MailSession(Protocol):
    """One connection to the mail server, reused for a batch of mails."""

    def send(self, mail: Mail) -> None:
        """Hand the mail to the server; raise MailUnavailable (or MailUnreachable) or
        MailRefused."""
        ...

    def close(self) -> None:
        """End the connection, if one is open."""
        ...


class Mailer(Protocol):
    """What the notification service needs to send mail."""

    def message_id(self, key: str) -> str:
        """The Message-ID of the mail about `key` (the same key gives the same id)."""
        ...

    def session(self) -> MailSession:
        """A session that connects at its first mail (nothing is opened yet)."""
        ...


MAILER: ResourceKey[Mailer] = ResourceKey("mailer")


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send: SMTP_HOST, SMTP_PORT, SMTP_TLS, SMTP_USERNAME, SMTP_PASSWORD,
    MAIL_FROM."""

    host: str = "localhost"
    port: int = 25
    tls: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mail_from: str = "shop@localhost"
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailSettings:
        env = os.environ if environ is None else environ
        tls = (env.get("SMTP_TLS") or "none").lower()
        if tls not in TLS_MODES:
            raise ConfigError(f"SMTP_TLS must be one of {', '.join(TLS_MODES)}, got {tls!r}")
        raw_port = env.get("SMTP_PORT") or str(DEFAULT_PORTS[tls])
        try:
            port = int(raw_port)
        except ValueError as error:
            raise ConfigError(f"SMTP_PORT must be a port number, got {raw_port!r}") from error
        if not 0 < port < 65536:
            raise ConfigError(f"SMTP_PORT must be a port number, got {port}")
        mail_from = env.get("MAIL_FROM") or "shop@localhost"
        if "@" not in parseaddr(mail_from)[1]:
            raise ConfigError(f"MAIL_FROM must be a mail address, got {mail_from!r}")
        return cls(
            host=env.get("SMTP_HOST") or "localhost",
            port=port,
            tls=tls,
            username=env.get("SMTP_USERNAME") or None,
            password=env.get("SMTP_PASSWORD") or None,
            mail_from=mail_from,
        )


class SmtpMailer:
    """Sends mail with smtplib, with optional TLS and login: one connection per session."""

    def __init__(self, settings: MailSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self._ssl_context = ssl_context
        self._domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"

    def message_id(self, key: str) -> str:
        return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{self._domain}>"

    def session(self) -> SmtpSession:
        return SmtpSession(self.settings, self._ssl_context)


class SmtpSession:
    """One SMTP connection for a batch: opened at the first mail, opened again after a failure
    that broke it, ended with QUIT by `close()`."""

    def __init__(self, settings: MailSettings, ssl_context: ssl.SSLContext | None) -> None:
        self.settings = settings
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body)
        # smtplib drops the socket itself when the server ends with 421: connect again then.
        smtp = self._smtp if self._smtp is not None and self._smtp.sock else self._open()
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            # smtplib reset the transaction (RSET): the connection takes the next mail.
            codes = [code for code, _ in error.recipients.values()]
            if all(code >= 500 for code in codes):
                raise MailRefused(f"the server refused {mail.to}: {error.recipients}") from error
            raise MailUnavailable(f"the server deferred {mail.to}: {error.recipients}") from error
        except smtplib.SMTPDataError as error:
            if error.smtp_code >= 500:
                raise MailRefused(f"the server refused the mail: {error}") from error
            raise MailUnavailable(f"the server deferred the mail: {error}") from error
        except OSError as error:  # smtplib's other errors, a lost connection, a timeout
            self.close()
            raise MailUnavailable(
                f"cannot send through {self._address()} ({type(error).__name__}: {error})"
            ) from error

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except OSError:  # the server went away first: nothing left to end
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        try:
            smtp = self._connect()
            try:
                if self.settings.username:
                    smtp.login(self.settings.username, self.settings.password or "")
            except BaseException:
                smtp.close()
                raise
        except OSError as error:  # refused, timed out, TLS, login, a 4xx or 5xx greeting
            raise MailUnreachable(
                f"cannot connect to {self._address()} ({type(error).__name__}: {error})"
            ) from error
        self._smtp = smtp
        return smtp

    def _address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = self._ssl_context or ssl.create_default_context()
        if settings.tls == "tls":
            return smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_seconds, context=context
            )
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        if settings.tls == "starttls":
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()
                raise
        return smtp
