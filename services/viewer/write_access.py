"""Who may use the viewer's write actions: send an event, redeliver or discard a dead letter.

VIEWER_WRITE_ACTIONS says it once, at start:

    on     anyone who reaches the viewer (the default: under `shop up` it listens on 127.0.0.1)
    off    nobody: 403; the page shows its controls disabled
    token  requests with `Authorization: Bearer <token>`, the token from VIEWER_WRITE_TOKEN_FILE
           (a mounted Secret) or VIEWER_WRITE_TOKEN; 401 without it or with another

Reading (the page, events, the stream, dead letters) stays open in every mode.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import Response

from kit.api import json_response
from kit.config import ConfigError
from wire.strings import quote

SETTING = "VIEWER_WRITE_ACTIONS"
TOKEN_FILE = "VIEWER_WRITE_TOKEN_FILE"
TOKEN = "VIEWER_WRITE_TOKEN"


class WriteMode(enum.StrEnum):
    ON = "on"
    OFF = "off"
    TOKEN = "token"


@dataclass(frozen=True)
class WriteAccess:
    """The mode, and the token write requests must carry in `token` mode (kept out of reprs)."""

    mode: WriteMode = WriteMode.ON
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode is WriteMode.TOKEN and not self.token:
            raise ConfigError(f"{SETTING}=token needs a token: set {TOKEN_FILE} or {TOKEN}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WriteAccess:
        """VIEWER_WRITE_ACTIONS (default on); in token mode VIEWER_WRITE_TOKEN_FILE, which wins
        over VIEWER_WRITE_TOKEN."""
        raw = env.get(SETTING, "").strip()
        try:
            mode = WriteMode(raw.lower() or WriteMode.ON)
        except ValueError:
            choices = ", ".join(mode.value for mode in WriteMode)
            raise ConfigError(f"{SETTING} must be one of {choices}, not {quote(raw)}") from None
        if mode is not WriteMode.TOKEN:
            return cls(mode)
        path = env.get(TOKEN_FILE)
        token = _read_token(path) if path else env.get(TOKEN, "").strip()
        if path and not token:
            raise ConfigError(f"{TOKEN_FILE}: {path} is empty")
        return cls(mode, token)

    def refusal(self, authorization: str | None) -> Response | None:
        """The answer to a write request with this Authorization header, or None to go ahead."""
        if self.mode is WriteMode.ON:
            return None
        if self.mode is WriteMode.OFF:
            return _refuse(403, f"the viewer's write actions are off ({SETTING}=off)")
        assert self.token is not None
        presented = _bearer(authorization)
        if presented is None:
            message = f"this write action needs `Authorization: Bearer <token>` ({SETTING}=token)"
            return _refuse(401, message)
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            return _refuse(401, f"the bearer token is not the viewer's write token ({SETTING})")
        return None


def _refuse(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="viewer"'} if status == 401 else None
    return json_response(status, {"error": message, "setting": SETTING}, headers)


def _bearer(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _read_token(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"{TOKEN_FILE}: cannot read {path}: {reason}") from None
