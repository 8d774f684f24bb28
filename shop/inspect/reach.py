"""Why a request got no answer, in a few words: what the CLI prints instead of urllib3's text.

requests wraps the operating system's error twice (ConnectionError around urllib3's
MaxRetryError around NewConnectionError), and its message repeats the pool, the URL and the
object reprs; a person wants "connection refused".
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import requests

# First match wins: RemoteDisconnected is a ConnectionResetError.
_PLAIN: dict[type[BaseException], str] = {
    http.client.RemoteDisconnected: "the connection closed without an answer",
    ConnectionRefusedError: "connection refused",
    ConnectionResetError: "the connection was reset",
    socket.gaierror: "unknown host",
}


def why_no_answer(error: requests.RequestException) -> str:
    """`connection refused`, `no answer in time`, `unknown host`... for a failed request."""
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    for cause in _causes(error):
        for kind, words in _PLAIN.items():
            if isinstance(cause, kind):
                return words
    for cause in _causes(error):
        if isinstance(cause, OSError) and not isinstance(cause, requests.RequestException):
            return cause.strerror.lower() if cause.strerror else type(cause).__name__
    if isinstance(error, requests.ConnectionError):
        return "the connection closed without an answer"
    return str(error)


def no_answer_at(url: str, timeout: float) -> str | None:
    """None when anything answers HTTP at `url` (any status); else why nothing did."""
    try:
        requests.get(url, timeout=timeout).close()
    except requests.RequestException as error:
        return why_no_answer(error)
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: causes, contexts, exception arguments, `reason`."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__]
        wrapped += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [item for item in wrapped if isinstance(item, BaseException)]
