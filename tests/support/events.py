"""Building CloudEvents requests for tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from wire.http_binding import WireEvent, to_binary, to_structured


def wire_event(event_type: str, data: Any = None, **attributes: str | int | bool) -> WireEvent:
    """A valid event of `event_type` with JSON data, a fresh id unless one is given."""
    base: dict[str, str | int | bool] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/tests",
        "type": event_type,
    }
    base.update(attributes)
    if data is None:
        return WireEvent(base)
    base["datacontenttype"] = "application/json"
    return WireEvent(base, json.dumps(data).encode())


def binary_request(
    event_type: str, data: Any = None, **attributes: Any
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode POST."""
    return to_binary(wire_event(event_type, data, **attributes))


def structured_request(
    event_type: str, data: Any = None, **attributes: Any
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a structured-mode POST."""
    return to_structured(wire_event(event_type, data, **attributes))
