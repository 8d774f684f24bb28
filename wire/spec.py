"""The CloudEvents 1.0.2 attribute rules, stated once for every receiver and forwarder."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from rfc3339_validator import validate_rfc3339
from rfc3986_validator import validate_rfc3986

from wire.errors import Problem
from wire.strings import quote, string_problem

AttributeValue = str | int | bool
Attributes = dict[str, AttributeValue]

SPECVERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
OPTIONAL_ATTRIBUTES = ("datacontenttype", "dataschema", "subject", "time")
CONTEXT_ATTRIBUTES = frozenset(REQUIRED_ATTRIBUTES + OPTIONAL_ATTRIBUTES)
# The Partitioning extension (CloudEvents extensions/partitioning.md): events with the same key
# belong together; the Kafka broker makes it the record key.
PARTITION_KEY_EXTENSION = "partitionkey"

_NAME = re.compile(r"[a-z0-9]+")
_INT32 = range(-(2**31), 2**31)
# RFC 7231 media-type: token "/" token *( OWS ";" OWS token "=" ( token / quoted-string ) ),
# with RFC 2045's token (CloudEvents names RFC 2046), which also takes "{" and "}".
_TOKEN = r"[!#$%&'*+.^_`{|}~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*[ \t]*;?[ \t]*"
)


class InvalidEvent(Problem, ValueError):
    """A request that is not a valid CloudEvent: 400 (or `status`), naming the attribute."""

    def __init__(self, message: str, attribute: str | None = None, status: int = 400) -> None:
        super().__init__(status, message, attribute=attribute)


def check_attribute_name(name: str) -> None:
    """Attribute and extension names are lower-case ASCII letters and digits, never `data`."""
    if not _NAME.fullmatch(name):
        raise InvalidEvent(
            f"attribute name {quote(name)} must consist of lower-case letters a-z and digits 0-9",
            attribute=name,
        )
    if name == "data":
        raise InvalidEvent("'data' is not an attribute name", attribute=name)


def is_rfc3339_time(value: str) -> bool:
    """A timestamp as CloudEvents demands it: RFC 3339 with seconds and an offset (a leap
    second included: 23:59:60 UTC on the last day of a month, RFC 3339 section 5.7)."""
    value = value.upper()  # RFC 3339 5.6: "T" and "Z" may be lower case
    if validate_rfc3339(value):
        return True
    leap = _leap_second_as_59(value)
    if leap is None:
        return False
    utc = leap.astimezone(UTC)
    last_day = (utc.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return (utc.hour, utc.minute, utc.day) == (23, 59, last_day.day)


def parse_time(value: str) -> datetime:
    """The datetime of a valid `time` value (fractions beyond microseconds are dropped; a leap
    second, which datetime cannot hold, becomes the last microsecond before it)."""
    value = value.upper()
    leap = _leap_second_as_59(value)
    if leap is not None:
        return leap.replace(microsecond=999999)
    return datetime.fromisoformat(value)


def format_time(moment: datetime) -> str:
    """A `time` value for an aware datetime: RFC 3339 in UTC with microseconds and "Z"."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _leap_second_as_59(value: str) -> datetime | None:
    """For a timestamp whose seconds are 60, the same timestamp at second 59; else None."""
    if len(value) < 20 or value[17:19] != "60":
        return None
    shifted = value[:17] + "59" + value[19:]
    return datetime.fromisoformat(shifted) if validate_rfc3339(shifted) else None


def check_attributes(attributes: Mapping[str, AttributeValue]) -> None:
    """Raise InvalidEvent for the first attribute that breaks a CloudEvents 1.0.2 rule.

    `attributes` holds every attribute present, extensions included, `data` excluded; JSON nulls
    must already be removed (null means absent). Values from HTTP headers are all strings.
    """
    for name in REQUIRED_ATTRIBUTES:
        if name not in attributes:
            raise InvalidEvent(f"required attribute {name!r} is missing", attribute=name)
    for name, value in attributes.items():
        if name in CONTEXT_ATTRIBUTES:
            _check_context_attribute(name, value)
        else:
            check_attribute_name(name)
            _check_extension_value(name, value)


def _check_context_attribute(name: str, value: AttributeValue) -> None:
    if not isinstance(value, str):
        raise InvalidEvent(f"attribute {name!r} must be a string", attribute=name)
    if value == "":
        raise InvalidEvent(f"attribute {name!r} must not be empty", attribute=name)
    _check_string(name, value)
    check = _VALUE_RULES.get(name)
    if check is not None:
        problem = check(value)
        if problem:
            raise InvalidEvent(f"{name} {quote(value)} {problem}", attribute=name)


def _check_string(name: str, value: str) -> None:
    problem = string_problem(value)
    if problem is not None:
        raise InvalidEvent(f"attribute {quote(name)} {problem}", attribute=name)


def _specversion_problem(value: str) -> str | None:
    return None if value == SPECVERSION else f"is not supported (expected {SPECVERSION!r})"


def _source_problem(value: str) -> str | None:
    return None if validate_rfc3986(value, rule="URI_reference") else "is not a URI-reference"


def _dataschema_problem(value: str) -> str | None:
    return None if validate_rfc3986(value, rule="URI") else "is not an absolute URI"


def _datacontenttype_problem(value: str) -> str | None:
    return None if _MEDIA_TYPE.fullmatch(value) else "is not an RFC 2046 media type"


def _time_problem(value: str) -> str | None:
    if is_rfc3339_time(value):
        return None
    return "is not an RFC 3339 timestamp with seconds and offset"


_VALUE_RULES = {
    "specversion": _specversion_problem,
    "source": _source_problem,
    "dataschema": _dataschema_problem,
    "datacontenttype": _datacontenttype_problem,
    "time": _time_problem,
}


def _check_extension_value(name: str, value: object) -> None:
    if isinstance(value, str):
        _check_string(name, value)
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if value not in _INT32:
            raise InvalidEvent(
                f"extension {quote(name)} is outside the 32-bit integer range", attribute=name
            )
        return
    raise InvalidEvent(
        f"extension {quote(name)} must be a string, an integer or a boolean,"
        f" not {type(value).__name__}",
        attribute=name,
    )


def attribute_text(value: AttributeValue) -> str:
    """The canonical string form of an attribute value (as headers and filters see it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
