"""CloudEvents over HTTP: content modes, header percent-coding, structured and batched JSON.

Every component that reads or writes CloudEvents on the wire (the kit, the local broker, the CLI,
the viewer) goes through these functions, so the binding's rules are written once. Parsing is
strict (see `spec.py`); the `cloudevents` SDK only ever sees events that passed it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from wire.json_input import JsonInputError, load_json
from wire.spec import (
    Attributes,
    AttributeValue,
    InvalidEvent,
    attribute_text,
    check_attributes,
)

STRUCTURED_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"
HEADER_PREFIX = "ce-"

# Printable ASCII except space, double quote and percent stays as it is in a header value.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
# RFC 9110 5.6.4 quoted-string (the binding unescapes it before percent-decoding).
_QUOTED_STRING = re.compile(
    r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_JSON_MEDIA = re.compile(r"^(application|text)/json$|^[^/]+/[^/]+\+json$")


class Mode(Enum):
    """How a request carries its event(s), decided by Content-Type alone."""

    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One CloudEvent as it travels: its attributes and its data as binary-mode body bytes."""

    attributes: Attributes
    data: bytes | None = None

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    @property
    def source(self) -> str:
        return str(self.attributes["source"])

    @property
    def type(self) -> str:
        return str(self.attributes["type"])

    def get(self, name: str) -> str | None:
        """The string form of an attribute, or None when it is absent."""
        value = self.attributes.get(name)
        return None if value is None else attribute_text(value)

    def with_attributes(self, **changes: AttributeValue | None) -> WireEvent:
        """A copy with attributes set (a value) or removed (None)."""
        attributes = dict(self.attributes)
        for name, value in changes.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        return WireEvent(attributes, self.data)


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value: parameters stripped, lower-cased."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


@functools.lru_cache(maxsize=256)
def is_json_media(content_type: str | None) -> bool:
    """Whether data of this content type is JSON (an absent type counts as JSON)."""
    return content_type is None or bool(_JSON_MEDIA.match(media_type(content_type)))


def content_mode(content_type: str | None) -> Mode:
    """The content mode of a request; a structured or batch format other than JSON is a 415."""
    media = media_type(content_type)
    if media.startswith("application/cloudevents-batch"):
        if media != BATCH_JSON:
            raise InvalidEvent(
                f"batch format {media!r} is not supported; use {BATCH_JSON}", status=415
            )
        return Mode.BATCH
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED_JSON:
            raise InvalidEvent(
                f"event format {media!r} is not supported; use {STRUCTURED_JSON}", status=415
            )
        return Mode.STRUCTURED
    return Mode.BINARY


def parse_request(
    content_type: str | None, headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[Mode, list[WireEvent]]:
    """The validated events of one HTTP request (a batch may hold none)."""
    mode = content_mode(content_type)
    if mode is Mode.BINARY:
        return mode, [parse_binary(headers, content_type, body)]
    if mode is Mode.STRUCTURED:
        return mode, [event_from_json(_load_json(body))]
    return mode, parse_batch(body)


def parse_binary(
    headers: Iterable[tuple[str, str]], content_type: str | None, body: bytes
) -> WireEvent:
    """A binary-mode event: `ce-*` headers are the attributes, the body is the data."""
    attributes: Attributes = {}
    for name, raw in headers:
        lower = name.lower()
        if not lower.startswith(HEADER_PREFIX):
            continue
        attribute = lower[len(HEADER_PREFIX) :]
        if attribute in attributes:
            raise repeated_header(attribute)
        if attribute == "datacontenttype":
            raise InvalidEvent(
                "binary mode carries datacontenttype in Content-Type, not ce-datacontenttype",
                attribute=attribute,
            )
        attributes[attribute] = decode_header_value(raw, attribute)
    if content_type is not None:
        # A Content-Type header that is present but empty is an empty datacontenttype: invalid.
        attributes["datacontenttype"] = content_type
    check_attributes(attributes)
    return WireEvent(attributes, body or None)


def repeated_header(attribute: str) -> InvalidEvent:
    """An attribute header sent twice: not a list (RFC 9110 5.3), and readers would disagree
    about which one counts."""
    return InvalidEvent(f"header {HEADER_PREFIX}{attribute} appears more than once", attribute)


def parse_batch(body: bytes) -> list[WireEvent]:
    """The events of a batched-mode body: a JSON array of structured events."""
    document = _load_json(body)
    if not isinstance(document, list):
        raise InvalidEvent("a batch must be a JSON array of events")
    events = []
    for index, item in enumerate(document):
        try:
            events.append(event_from_json(item))
        except InvalidEvent as error:
            raise InvalidEvent(
                f"batch entry {index}: {error.message}", error.attribute, error.status
            ) from error
    return events


def event_from_json(document: Any) -> WireEvent:
    """A structured-mode event from its decoded JSON object."""
    if not isinstance(document, dict):
        raise InvalidEvent("a structured event must be a JSON object")
    attributes: Attributes = {}
    for name, value in document.items():
        if value is not None and name not in ("data", "data_base64"):
            attributes[name] = value
    check_attributes(attributes)
    data = document.get("data")
    data_base64 = document.get("data_base64")
    if data is not None and data_base64 is not None:
        raise InvalidEvent("an event carries either data or data_base64, not both", "data_base64")
    if data_base64 is not None:
        return WireEvent(attributes, _decode_base64(data_base64))
    if data is None:
        return WireEvent(attributes)
    # Without datacontenttype the JSON format means application/json, and so does binary mode
    # without Content-Type: nothing needs adding for the event to cross modes unchanged.
    content_type = attributes.get("datacontenttype")
    if isinstance(data, str) and not is_json_media(
        content_type if isinstance(content_type, str) else None
    ):
        return WireEvent(attributes, data.encode())
    return WireEvent(attributes, _dump_json(data))


def decode_header_value(raw: str, attribute: str) -> str:
    """A `ce-*` header value as an attribute: unquote, percent-decode once, demand UTF-8."""
    quoted = _QUOTED_STRING.fullmatch(raw)
    if quoted is not None:  # a value that is not a whole quoted-string is taken as it is
        raw = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
    if not raw.isascii():
        raise InvalidEvent(
            f"header ce-{attribute} holds characters outside ASCII; percent-encode them",
            attribute=attribute,
        )
    if "%" not in raw:
        return raw
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(
            f"header ce-{attribute} is not UTF-8 after percent-decoding", attribute=attribute
        ) from error


def encode_header_value(value: AttributeValue) -> str:
    """An attribute value as a header value: percent-encode what HTTP headers cannot carry."""
    return quote(attribute_text(value), safe=_HEADER_SAFE)


def to_binary(event: WireEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode request or response carrying `event`."""
    headers: dict[str, str] = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers["Content-Type"] = str(value)
        else:
            headers[HEADER_PREFIX + name] = encode_header_value(value)
    return headers, event.data or b""


def to_structured_document(event: WireEvent) -> dict[str, Any]:
    """The JSON object of a structured-mode event.

    JSON data goes in as `data` (a JSON value), text data (`text/*`) as a `data` string, and
    anything else, or data that is not what its type says, as `data_base64`: bytes that happen
    to be UTF-8 are still bytes.
    """
    document: dict[str, Any] = dict(event.attributes)
    if event.data is None:
        return document
    content_type = event.get("datacontenttype")
    if is_json_media(content_type):
        try:
            document["data"] = load_json(event.data, what="data")
            return document
        except JsonInputError:
            pass
    elif media_type(content_type).startswith("text/"):
        try:
            document["data"] = event.data.decode("utf-8")
            return document
        except UnicodeDecodeError:
            pass
    document["data_base64"] = base64.b64encode(event.data).decode("ascii")
    return document


def to_structured(event: WireEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body of a structured-mode request carrying `event`."""
    return {"Content-Type": STRUCTURED_JSON}, _dump_json(to_structured_document(event))


def _load_json(body: bytes) -> Any:
    try:
        return load_json(body, unique_members=True)
    except JsonInputError as error:
        # An event's members are its attributes (a batch's, one level down).
        names = [part for part in error.path[:2] if isinstance(part, str)]
        if names and error.repeated:
            raise InvalidEvent(str(error), names[0]) from None
        if names and names[0] not in ("data", "data_base64") and error.problem is not None:
            raise InvalidEvent(f"attribute {names[0]!r} {error.problem}", names[0]) from None
        raise InvalidEvent(str(error)) from None


def _dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidEvent("data_base64 must be a string", "data_base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise InvalidEvent(f"data_base64 is not valid base64: {error}", "data_base64") from error
