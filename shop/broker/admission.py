"""The ingress's own rules, as pure functions: broker paths, the hop counter, arrival time, headers.

Read from knative/eventing `pkg/broker/ingress/ingress_handler.go` (path split, order of checks),
`pkg/broker/ttl.go` (TTLDefaulter) and `pkg/utils/header.go` (PassThroughHeaders).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from wire.spec import Attributes, AttributeValue, format_time

TTL_ATTRIBUTE = "knativebrokerttl"
ARRIVAL_ATTRIBUTE = "knativearrivaltime"
DEFAULT_TTL = 255

# What the ingress lets travel from producer to subscriber besides the event itself.
_PASS_THROUGH_NAMES = frozenset({"x-request-id", "retry-after"})
_PASS_THROUGH_PREFIXES = ("knative-", "x-b3-")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Control characters but tab, and the surrogate escapes of bytes that were not UTF-8.
_UNSAFE_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f\udc80-\udcff]")
_INT32 = range(-(2**31), 2**31)

Headers = tuple[tuple[str, str], ...]


class BadPath(ValueError):
    """A request path that names no broker; `status` is what Knative answers (404 or 400)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def broker_of_path(path: str) -> tuple[str, str]:
    """The (namespace, broker) a request path names: `/<ns>/<broker>`, one trailing `/` allowed.

    Like Knative's ingress: exactly `/` is 404; anything that does not split into two segments
    is 400. Empty segments are not refused here; they name no broker, so they end as 404.
    """
    if path == "/":
        raise BadPath("no broker at /; post events to /<namespace>/<broker>", 404)
    trimmed = path[:-1] if path.endswith("/") else path
    parts = trimmed.split("/")
    if len(parts) != 3 or parts[0] != "":
        raise BadPath(f"path {path!r} is not /<namespace>/<broker>", 400)
    return parts[1], parts[2]


def next_ttl(value: AttributeValue | None) -> int:
    """The hop counter an event leaves the ingress with (TTLDefaulter).

    Absent -> 255; an integer (or its text) -> one less, never below 0; anything else -> 255.
    The ingress refuses the event when the result is 0.
    """
    ttl = _as_int32(value)
    if ttl is None:
        return DEFAULT_TTL
    return max(ttl - 1, 0)


def _as_int32(value: AttributeValue | None) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in _INT32 else None
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if number in _INT32 else None


def arrival_time(now: datetime | None = None) -> str:
    """`knativearrivaltime`: the RFC 3339 UTC time the ingress received the event."""
    return format_time(now or datetime.now(UTC))


def pass_through_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    """The HTTP headers that travel with an event: x-request-id, retry-after, knative-*, x-b3-*.

    A value with a control character (or bytes that are not UTF-8) is not passed on: the broker
    writes these headers into every delivery, and must write only what is safe to write.
    """
    kept = []
    for name, value in headers:
        lower = name.lower()
        if (
            lower in _PASS_THROUGH_NAMES or lower.startswith(_PASS_THROUGH_PREFIXES)
        ) and not _UNSAFE_VALUE.search(value):
            kept.append((lower, value))
    return tuple(kept)


def filter_view(attributes: Attributes) -> Attributes:
    """The attributes a trigger filter sees: all of them but the hop counter (removed first)."""
    if TTL_ATTRIBUTE not in attributes:
        return attributes
    view = dict(attributes)
    del view[TTL_ATTRIBUTE]
    return view
