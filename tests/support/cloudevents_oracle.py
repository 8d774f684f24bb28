"""An independent judge of CloudEvents 1.0.2 over HTTP, for tests: is this request a valid event?

Written from the specifications, not from the code under test (it imports nothing from
`services` or `shop`): CloudEvents 1.0.2 (type system, context attributes, naming), its HTTP
binding 1.0.2 (content modes, `ce-` headers, quoting and percent-coding), the JSON event format
1.0.2, RFC 3986 (URI, URI-reference), RFC 3339 (timestamps), RFC 2045/2046 and RFC 9110
(media types), RFC 4648 (base64), RFC 8259 (JSON) and RFC 9110 (field values).

Where the specifications leave room, the oracle is lenient: it calls an event invalid only when
a rule is plainly broken, so that a server may be stricter than it but never looser. Choices:

- media types: RFC 2045 tokens (they allow `{` and `}`), optional spaces around `/`, `;` and
  `=` (RFC 822 lexical rules), and empty parameters (`text/plain;`, RFC 9110 `parameters`);
- a `%` not followed by two hex digits in a header value stays as it is (the binding does not
  say it is an error); the bytes percent-decoding yields must be UTF-8, strictly;
- a header value outside printable ASCII (obs-text) or with a control character is invalid: the
  binding has senders percent-encode those, and a receiver could only guess their encoding;
- an attribute header (`ce-*`) or `Content-Type` that appears twice is invalid (RFC 9110 5.3:
  neither is a list; readers disagree about which one counts), as is an attribute that appears
  twice as a member of a structured event;
- a second of 60 is a leap second only at 23:59:60 UTC on the last day of a month;
- `data` holding a lone surrogate escape is not judged (RFC 8259 8.2 calls it unpredictable);
  a lone surrogate in an attribute breaks the String rule;
- specversion `0.3` is another specification; such an event is not judged (counted valid).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

AttributeValue = str | int | bool

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "specversion", "type")
INT32 = range(-(2**31), 2**31)
#: The oracle does not follow JSON deeper than this (Python's parser would recurse too far).
MAX_JUDGED_DEPTH = 400

# -- RFC 3986 -------------------------------------------------------------------------------

_ALPHA = "A-Za-z"
_DIGIT = "0-9"
_HEX = "0-9A-Fa-f"
_UNRESERVED = rf"[{_ALPHA}{_DIGIT}\-._~]"
_PCT = rf"%[{_HEX}][{_HEX}]"
_SUB_DELIMS = r"[!$&'()*+,;=]"
_PCHAR = rf"(?:{_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|[:@])"
_SCHEME = rf"[{_ALPHA}][{_ALPHA}{_DIGIT}+\-.]*"
_USERINFO = rf"(?:{_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|:)*"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}\.{_DEC_OCTET}"
_H16 = rf"[{_HEX}]{{1,4}}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = (
    "(?:"
    + "|".join(
        [
            rf"(?:{_H16}:){{6}}{_LS32}",
            rf"::(?:{_H16}:){{5}}{_LS32}",
            rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
_IPVFUTURE = rf"v[{_HEX}]+\.(?:{_UNRESERVED}|{_SUB_DELIMS}|:)+"
_IP_LITERAL = rf"\[(?:{_IPV6}|{_IPVFUTURE})\]"
_REG_NAME = rf"(?:{_UNRESERVED}|{_PCT}|{_SUB_DELIMS})*"
_HOST = rf"(?:{_IP_LITERAL}|{_REG_NAME})"
_AUTHORITY = rf"(?:{_USERINFO}@)?{_HOST}(?::[{_DIGIT}]*)?"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_SEGMENT_NZ_NC = rf"(?:{_UNRESERVED}|{_PCT}|{_SUB_DELIMS}|@)+"
_PATH_ABEMPTY = rf"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = rf"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_PATH_NOSCHEME = rf"{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*"
_PATH_ROOTLESS = rf"{_SEGMENT_NZ}(?:/{_SEGMENT})*"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_HIER_PART = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS}|)"
_RELATIVE_PART = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME}|)"
_URI = re.compile(rf"{_SCHEME}:{_HIER_PART}(?:\?{_QUERY})?(?:#{_QUERY})?")
_RELATIVE_REF = re.compile(rf"{_RELATIVE_PART}(?:\?{_QUERY})?(?:#{_QUERY})?")


def is_uri(value: str) -> bool:
    """RFC 3986 `URI` (absolute: a scheme, then the rest)."""
    return _URI.fullmatch(value) is not None


def is_uri_reference(value: str) -> bool:
    """RFC 3986 `URI-reference`: a URI or a relative reference."""
    return is_uri(value) or _RELATIVE_REF.fullmatch(value) is not None


# -- RFC 3339 -------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS[month - 1]


def is_timestamp(value: str) -> bool:
    """RFC 3339 `date-time`, with the value ranges of its section 5.7."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    offset = timedelta()
    if match.group(9):
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return False
        offset = timedelta(hours=offset_hours, minutes=offset_minutes)
        if match.group(9) == "-":
            offset = -offset
    if second == 60:
        # A leap second is the last second of a UTC day that ends a month.
        try:
            local = datetime(year, month, day, hour, minute, 59)
        except ValueError:
            return False
        utc = local - offset
        last_day = _days_in(utc.year, utc.month)
        return (utc.hour, utc.minute, utc.day) == (23, 59, last_day)
    return True


# -- media types (RFC 2045/2046, RFC 9110) ---------------------------------------------------

_MIME_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_MIME_QUOTED = r'"(?:[^"\\\r]|\\[\x00-\x7f])*"'
_SP = r"[ ]*"
_MEDIA_TYPE = re.compile(
    rf"{_SP}{_MIME_TOKEN}{_SP}/{_SP}{_MIME_TOKEN}"
    rf"(?:{_SP};{_SP}(?:{_MIME_TOKEN}{_SP}={_SP}(?:{_MIME_TOKEN}|{_MIME_QUOTED}))?)*{_SP}"
)


def is_media_type(value: str) -> bool:
    """A media type (type/subtype with parameters), as RFC 2046 and RFC 9110 allow it."""
    return value.isascii() and _MEDIA_TYPE.fullmatch(value) is not None


def essence(content_type: str) -> str:
    """type/subtype, lower-cased, without parameters or spaces."""
    return content_type.split(";", 1)[0].replace(" ", "").lower()


# -- the CloudEvents type system ---------------------------------------------------------------

_NAME = re.compile(r"[a-z0-9]+")


def _forbidden(code: int) -> bool:
    return (
        code <= 0x1F
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or (code & 0xFFFE) == 0xFFFE
    )


def string_problem(value: str) -> str | None:
    """Why `value` is not a CloudEvents String, or None."""
    for index, character in enumerate(value):
        if _forbidden(ord(character)):
            return f"U+{ord(character):04X} at character {index} is not allowed in a String"
    return None


def attribute_name_problem(name: str) -> str | None:
    if name == "data":
        return "'data' is not an attribute name"
    if _NAME.fullmatch(name) is None:
        return f"attribute name {name[:40]!r} is not lower-case letters and digits"
    return None


def _context_problem(name: str, value: str) -> str | None:
    if name in ("id", "source", "type", "subject", "specversion") and value == "":
        return f"{name} is empty"
    if name == "specversion" and value != "1.0":
        return f"specversion {value[:20]!r} is not 1.0"
    if name == "source" and not is_uri_reference(value):
        return f"source {value[:60]!r} is not a URI-reference"
    if name == "dataschema" and not is_uri(value):
        return f"dataschema {value[:60]!r} is not an absolute URI"
    if name == "time" and not is_timestamp(value):
        return f"time {value[:60]!r} is not an RFC 3339 timestamp"
    if name == "datacontenttype" and not is_media_type(value):
        return f"datacontenttype {value[:60]!r} is not a media type"
    return None


CONTEXT_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)


def attributes_problem(attributes: dict[str, AttributeValue]) -> tuple[str, str] | None:
    """What is wrong with these attributes (JSON types kept; all strings in binary mode) and
    which attribute it is, or None."""
    for name in REQUIRED:
        if name not in attributes:
            return f"required attribute {name} is missing", name
    for name, value in attributes.items():
        problem = attribute_name_problem(name) or _value_problem(name, value)
        if problem:
            return problem, name
    return None


def _value_problem(name: str, value: AttributeValue) -> str | None:
    if name in CONTEXT_ATTRIBUTES:
        if not isinstance(value, str):
            return f"{name} must be a string"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        return None if value in INT32 else f"extension {name} is outside the Integer range"
    elif not isinstance(value, str):
        return f"extension {name} has a value of type {type(value).__name__}"
    problem = string_problem(value)
    if problem:
        return f"{name}: {problem}"
    if name in CONTEXT_ATTRIBUTES:
        return _context_problem(name, value)
    return None


# -- JSON (RFC 8259) ---------------------------------------------------------------------------


class _Float:
    """A JSON number with a fraction or exponent (never an Integer attribute)."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Duplicate(dict[str, Any]):
    """A JSON object in which a member name appears more than once."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    document: dict[str, Any] = _Duplicate(pairs) if len(set(names)) != len(names) else dict(pairs)
    return document


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    return deepest


class _NotJson(ValueError):
    pass


def parse_json(body: bytes) -> Any:
    """A JSON document: UTF-8, no NaN/Infinity; numbers kept as int or _Float."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _NotJson(f"the body is not UTF-8 ({error.reason} at byte {error.start})") from None
    text = text.removeprefix("\ufeff")  # RFC 8259 8.1: a parser MAY ignore a byte order mark
    if json_depth(text) > MAX_JUDGED_DEPTH:
        raise _NotJson(f"the body nests deeper than {MAX_JUDGED_DEPTH} levels")
    try:
        return json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_Float,
            parse_int=_integer,
            object_pairs_hook=_pairs,
        )
    except (ValueError, RecursionError) as error:
        raise _NotJson(f"the body is not JSON: {str(error)[:80]}") from None


def _integer(text: str) -> int | _Float:
    if len(text.lstrip("-")) > 20:  # far outside every range; Python would refuse to convert
        return _Float(text)
    return int(text)


# -- verdicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A valid event as the oracle read it: attributes with their JSON types (binary: strings)."""

    attributes: dict[str, AttributeValue]
    data: bytes | None = None


@dataclass(frozen=True)
class Verdict:
    """What a request is: its mode, and either its events or the first problem found."""

    mode: str  # "binary", "structured", "batch", or "unreadable"
    problem: str | None
    events: tuple[Event, ...] = field(default=())
    judged: bool = True  # False where the oracle declines to judge (see the module docstring)
    attribute: str | None = None  # the attribute at fault, when the problem is one attribute's

    @property
    def valid(self) -> bool:
        return self.problem is None


def _invalid(mode: str, problem: str, attribute: str | None = None) -> Verdict:
    return Verdict(mode, problem, attribute=attribute)


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_QUOTED_STRING = re.compile(rb'"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"')
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def decode_header_value(raw: bytes) -> str:
    """A `ce-*` header value as an attribute value (binding 3.1.3.2); ValueError if it cannot be."""
    value = raw.strip(b" \t")
    if _FIELD_VALUE_CTL.search(value):
        raise ValueError("a control character in a header value")
    if any(byte >= 0x80 for byte in value):
        raise ValueError("a header value outside printable ASCII (it must be percent-encoded)")
    quoted = _QUOTED_STRING.fullmatch(value)
    if quoted is not None:
        value = re.sub(rb"\\(.)", rb"\1", quoted.group(1), flags=re.DOTALL)
    decoded = _PERCENT.sub(lambda match: bytes([int(match.group(1), 16)]), value)
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("percent-decoding yields bytes that are not UTF-8") from None


def judge_request(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> Verdict:
    """The oracle's verdict on an HTTP request (its header fields as sent, its decoded body)."""
    for name, _ in headers:
        if _TOKEN.fullmatch(name) is None:
            return _invalid("unreadable", f"header name {name[:40]!r} is not a token")
    content_types = [value for name, value in headers if name.lower() == b"content-type"]
    if len(content_types) > 1:
        return _invalid("unreadable", "Content-Type appears more than once")
    content_type: str | None = None
    if content_types:
        raw = content_types[0].strip(b" \t")
        if _FIELD_VALUE_CTL.search(raw) or any(byte >= 0x80 for byte in raw):
            return _invalid("unreadable", "Content-Type holds bytes outside printable ASCII")
        content_type = raw.decode("ascii")
    media = essence(content_type) if content_type and is_media_type(content_type) else ""
    if media.startswith("application/cloudevents-batch"):
        if media != BATCH:
            return _invalid("unreadable", f"batch format {media} is not JSON")
        return _judge_batch(body)
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED:
            return _invalid("unreadable", f"event format {media} is not JSON")
        return _judge_structured(body)
    return _judge_binary(headers, content_type, body)


def _judge_binary(
    headers: Sequence[tuple[bytes, bytes]], content_type: str | None, body: bytes
) -> Verdict:
    attributes: dict[str, AttributeValue] = {}
    for name, raw in headers:
        lower = name.lower()
        if not lower.startswith(b"ce-"):
            continue
        attribute = lower[3:].decode("ascii")
        if attribute in attributes:
            return _invalid("binary", f"header ce-{attribute} appears more than once", attribute)
        if attribute == "datacontenttype":
            return _invalid(
                "binary", "datacontenttype travels as Content-Type in binary mode", attribute
            )
        try:
            attributes[attribute] = decode_header_value(raw)
        except ValueError as error:
            return _invalid("binary", f"ce-{attribute}: {error}", attribute)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return _verdict("binary", attributes, body or None)


def _verdict(mode: str, attributes: dict[str, AttributeValue], data: bytes | None) -> Verdict:
    if attributes.get("specversion") == "0.3":
        return Verdict(mode, None, (Event(attributes, data),), judged=False)
    found = attributes_problem(attributes)
    if found:
        return _invalid(mode, *found)
    return Verdict(mode, None, (Event(attributes, data),))


def _judge_structured(body: bytes) -> Verdict:
    try:
        document = parse_json(body)
    except _NotJson as error:
        return _invalid("structured", str(error))
    return _event_of_json("structured", document)


def _judge_batch(body: bytes) -> Verdict:
    try:
        document = parse_json(body)
    except _NotJson as error:
        return _invalid("batch", str(error))
    if not isinstance(document, list):
        return _invalid("batch", "a batch is a JSON array")
    events: list[Event] = []
    judged = True
    for index, item in enumerate(document):
        verdict = _event_of_json("batch", item)
        if not verdict.valid:
            return _invalid("batch", f"entry {index}: {verdict.problem}", verdict.attribute)
        judged = judged and verdict.judged
        events.extend(verdict.events)
    versions = {event.attributes.get("specversion") for event in events}
    if len(versions) > 1:
        return _invalid("batch", "the events of a batch do not share one specversion")
    return Verdict("batch", None, tuple(events), judged)


def _event_of_json(mode: str, document: Any) -> Verdict:
    if not isinstance(document, dict):
        return _invalid(mode, "an event is a JSON object")
    if isinstance(document, _Duplicate):
        return _invalid(mode, "a member of the event appears more than once")
    attributes: dict[str, AttributeValue] = {}
    for name, value in document.items():
        if name in ("data", "data_base64") or value is None:
            continue
        if isinstance(value, _Float):
            return _invalid(mode, f"{name}: {value.text[:30]} is not an Integer", name)
        if isinstance(value, dict | list):
            return _invalid(mode, f"{name} is an object or array, not an attribute value", name)
        attributes[name] = value
    data = document.get("data")
    data_base64 = document.get("data_base64")
    if data is not None and data_base64 is not None:
        return _invalid(mode, "data and data_base64 are both present", "data_base64")
    raw: bytes | None = None
    if data_base64 is not None:
        if not isinstance(data_base64, str):
            return _invalid(mode, "data_base64 is not a string", "data_base64")
        try:
            raw = base64.b64decode(data_base64.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return _invalid(mode, "data_base64 is not base64", "data_base64")
    return _verdict(mode, attributes, raw)


def comparable(attributes: dict[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """Attributes for comparison: `ignore`d names removed, booleans kept apart from integers."""
    skipped = set(ignore)
    return {
        name: (("bool", value) if isinstance(value, bool) else value)
        for name, value in attributes.items()
        if name not in skipped
    }
