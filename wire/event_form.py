"""An event from fields a person typed (the viewer's send form, `shop send`), and posting it.

Both tools build the event here, so a blank field, made-up id or data that is not JSON means the
same on the page and in the terminal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from wire.http_binding import WireEvent, is_json_media, to_binary, to_structured
from wire.spec import Attributes, check_attributes

DEFAULT_SOURCE = "/shop/viewer"
DEFAULT_CONTENT_TYPE = "application/json"


class FormError(ValueError):
    """A field of the form that cannot become part of a valid event."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SendResult:
    """What the broker answered."""

    status: int
    body: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def event_from_form(form: Mapping[str, Any]) -> WireEvent:
    """The event the form describes; blank optional fields are left out, id made up if blank.

    Raises FormError for data that is not JSON under a JSON content type, and the kit's
    InvalidEvent (naming the attribute) for anything CloudEvents does not allow.
    """
    attributes: Attributes = {
        "specversion": "1.0",
        "id": _blank_to_none(form.get("id")) or str(uuid.uuid4()),
        "source": _blank_to_none(form.get("source")) or DEFAULT_SOURCE,
        "type": str(form["type"]).strip(),
    }
    subject = _blank_to_none(form.get("subject"))
    if subject is not None:
        attributes["subject"] = subject
    for name, value in (form.get("extensions") or {}).items():
        attributes[str(name).strip()] = value
    data_text = form.get("data")
    data: bytes | None = None
    if data_text is not None and data_text.strip():
        content_type = _blank_to_none(form.get("datacontenttype")) or DEFAULT_CONTENT_TYPE
        attributes["datacontenttype"] = content_type
        data = _data_bytes(data_text, content_type)
    check_attributes(attributes)
    return WireEvent(attributes, data)


def post_event(
    url: str,
    event: WireEvent,
    *,
    structured: bool,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> SendResult:
    """Post `event` in binary or structured mode, with `headers` besides the event's own (a
    bearer token); requests' exceptions when nobody answers."""
    event_headers, body = to_structured(event) if structured else to_binary(event)
    response = requests.post(
        url, data=body, headers={**event_headers, **(headers or {})}, timeout=timeout
    )
    return SendResult(response.status_code, response.text)


def _data_bytes(text: str, content_type: str) -> bytes:
    if not is_json_media(content_type):
        return text.encode()
    try:
        value = json.loads(text)
    except ValueError as error:
        raise FormError("data", f"data is not valid JSON ({content_type}): {error}") from None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _blank_to_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
