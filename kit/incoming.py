"""Validated wire events as the `cloudevents` SDK's CloudEvent, which handlers receive."""

from __future__ import annotations

from typing import Any

from cloudevents.core.v1.event import CloudEvent

from wire.http_binding import WireEvent, is_json_media, media_type
from wire.json_input import JsonInputError, load_json
from wire.spec import InvalidEvent, parse_time


def decode_data(event: WireEvent) -> Any:
    """The event's data: parsed JSON for JSON types, text for text/*, else bytes."""
    if event.data is None:
        return None
    content_type = event.get("datacontenttype")
    if is_json_media(content_type):
        try:
            return load_json(event.data, what="data")
        except JsonInputError as error:
            raise InvalidEvent(str(error), attribute="data") from None
    if media_type(content_type).startswith("text/"):
        try:
            return event.data.decode("utf-8")
        except UnicodeDecodeError:
            return event.data
    return event.data


def to_cloudevent(event: WireEvent, data: Any) -> CloudEvent:
    """The SDK event for a wire event that already passed strict validation."""
    attributes: dict[str, Any] = dict(event.attributes)
    had_time = "time" in attributes
    if had_time:
        attributes["time"] = parse_time(str(attributes["time"]))
    cloudevent = CloudEvent(attributes, data)
    if not had_time:
        # The SDK invents a `time` the sender never set; a handler must not see one.
        cloudevent.get_attributes().pop("time", None)
    return cloudevent
