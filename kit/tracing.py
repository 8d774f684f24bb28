"""W3C trace context (`traceparent`) carried from the event being handled into what it causes."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16

#: The `traceparent` header of the delivery being handled: the broker's span of this attempt.
DELIVERY_TRACEPARENT: ContextVar[str | None] = ContextVar("delivery_traceparent", default=None)


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


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """The traceparent (version 00) of a span context."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def consumer_parent(event_traceparent: str | None, delivery_traceparent: str | None) -> str | None:
    """The parent of a received event's consumer span: the delivery's span (the broker's attempt
    that brought it) when it continues the event's trace, else the event's own `traceparent`."""
    delivered = trace_id(delivery_traceparent)
    if delivered is not None and delivered == (trace_id(event_traceparent) or delivered):
        return delivery_traceparent
    return event_traceparent
