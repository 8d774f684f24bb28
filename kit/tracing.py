"""W3C trace context (`traceparent`) carried from the event being handled into what it causes."""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a valid traceparent, else None."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match or match.group(1) == "ff" or match.group(2) == _INVALID_TRACE:
        return None
    return match.group(2)


def child_traceparent(parent: str | None) -> str:
    """A traceparent for work caused by `parent`: same trace, new span; a new trace if none."""
    match = _TRACEPARENT.match(parent or "")
    if match and trace_id(parent) and match.group(3) != _INVALID_SPAN:
        return f"00-{match.group(2)}-{secrets.token_hex(8)}-{match.group(4)}"
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
