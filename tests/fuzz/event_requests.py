"""CloudEvents requests for fuzzing: a valid event, perhaps mutated, rendered in a content mode.

Half of what comes out is a valid event sent plainly (so acceptance is exercised, not only
refusal); the rest breaks or stretches one thing: an attribute's value or name, the String
rule, a header's quoting or percent-coding, the JSON of a structured body, the Content-Type,
the body's size or nesting. `meta` on each request records the intended mode, which attribute
a mutation aimed at, and whether the request is *plainly valid* (a valid event in its most
ordinary form: a receiver has no excuse to refuse it).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from tests.fuzz.choices import ONE_IN_2, ONE_IN_4, ONE_IN_6, ONE_IN_10, Choices
from tests.fuzz.http_requests import BODY_SIZES, RawRequest, sent_some_way
from wire.limits import MAX_JSON_DEPTH

STRUCTURED = b"application/cloudevents+json"
BATCH = b"application/cloudevents-batch+json"

PLAIN_SOURCES = ("/fuzz/source", "https://example.com/fuzz", "urn:fuzz:source", "fuzz/relative")
ODD_VALID_SOURCES = (
    "//authority/only",
    "mailto:fuzz@example.com",
    "http://[::1]:8080/x?y=z#f",
    "./dot",
    "?query-only",
    "#fragment",
    "%41%42",
    "a:b:c",
    "http://user:pw@host/",
    "tag:example.com,2024:x",
)
BAD_SOURCES = (
    "http://exa mple.com",
    "%zz",
    "1a:x",
    ":x",
    "http://[::1/",
    "a\\b",
    "http://host/<>",
    "/\u00e9",
    "//[v1.x",
)
PLAIN_TYPES = ("com.example.fuzz", "com.example.fuzz.created", "fuzz")
PLAIN_IDS = ("fz-1", "fz-abc", "9f6a2c", "A-b_c.d~e")
ODD_VALID_STRINGS = (
    "\u00a0",
    "\u2028",
    "\u00e9t\u00e9",
    "\u65e5\u672c",
    "\U0001f600",
    "\ufeff",
    '"quoted"',
    "back\\slash",
    "%41",
    " leading and trailing ",
    "x" * 1000,
    "\U0010fffd",
)
#: Characters the String rule forbids (as Python characters; JSON escapes them).
FORBIDDEN_CHARACTERS = (
    "\x00",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\ufdd0",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\U0010ffff",
)
PLAIN_TIMES = ("2024-02-29T23:59:59Z", "1996-12-19T16:39:57-08:00", "2018-04-05T17:31:00.123Z")
ODD_VALID_TIMES = (
    "1985-04-12T23:20:50.52Z",
    "2024-01-01t00:00:00z",
    "2024-01-01T00:00:00.123456789123+05:30",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999-23:59",
    "1990-12-31T23:59:60Z",
    "2024-01-01T00:00:00-00:00",
)
BAD_TIMES = (
    "2018-04-05T18:31Z",
    "2018-04-05",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00+24:00",
    "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",
    "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00:61Z",
    "2024-06-30T12:00:60Z",
    " 2024-01-01T00:00:00Z",
    "2024-1-01T00:00:00Z",
)
PLAIN_SCHEMAS = ("https://example.com/schemas/fuzz.json", "urn:shop:schema:fuzz")
BAD_SCHEMAS = ("/relative/schema", "schema.json", "//host/schema", "http://exa mple", "")
PLAIN_CONTENT_TYPES = ("application/json", "text/plain; charset=utf-8", "application/octet-stream")
ODD_VALID_CONTENT_TYPES = (
    "application/vnd.example+json; version=2",
    'text/plain; charset="utf-8"',
    "text/plain;",
    "APPLICATION/JSON",
    "application/x-{curly}",
)
BAD_CONTENT_TYPES = ("text", "text/", "/json", "text/plain; charset", "???", "a b/c", "text/pl ain")
EXTENSION_NAMES = ("fuzzext", "traceparent", "partitionkey", "x1", "abcdefghijklmnopqrst")
BAD_NAMES = ("Upper", "snake_case", "kebab-case", "data", "\u00e4", "x.y", "abcdefghijklmnopqrstu")
SPECVERSIONS = ("1", "1.0.0", "2.0", " 1.0", "1.0 ", "v1.0", "0.3")
INTEGERS = (0, 1, -1, 2**31 - 1, -(2**31))
BAD_INTEGER_LITERALS = (
    "2147483648",
    "-2147483649",
    "99999999999999999999999",
    "1e400",
    "1.0",
    "1E2",
    "-0.0",
)


@dataclass(frozen=True)
class FuzzEvent:
    """An event as attributes (JSON types) and data; possibly mutated into an invalid one."""

    attributes: dict[str, Any]
    data_kind: str = "none"  # none, json, text, bytes
    data: Any = None
    mutated: str | None = None  # the attribute a mutation aimed at
    plain: bool = True


# -- a valid event --------------------------------------------------------------------------------

SUBJECTS = ("order-1", "s")
TIME_KINDS = ("none", "plain", "plain", "odd")
DATA_KINDS = ("none", "json", "json", "text", "bytes")
JSON_DATA = ({"order_id": "o-1", "n": 3}, [1, 2, 3], "text", 42, {}, [])
TEXT_DATA = ("hello", "", "caf\u00e9", "line\nbreak")
BYTES_DATA = (b"\x00\x01\xff", b"\xc0\xa0", b"plain bytes")
EXTENSION_VALUES: tuple[Any, ...] = (
    "v",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    *INTEGERS,
    True,
    False,
)


def valid_event(choices: Choices) -> FuzzEvent:
    """A valid event; `plain` unless it uses one of the rarer (still valid) forms."""
    plain = True
    nonce = choices.tag()
    attributes: dict[str, Any] = {"specversion": "1.0"}
    if choices.one_in(ONE_IN_10):
        attributes["id"] = choices.detail(ODD_VALID_STRINGS) + nonce
        plain = False
    else:
        attributes["id"] = f"{choices.detail(PLAIN_IDS)}-{nonce}"
    if choices.one_in(ONE_IN_10):
        attributes["source"] = choices.detail(ODD_VALID_SOURCES)
        plain = False
    else:
        attributes["source"] = choices.detail(PLAIN_SOURCES)
    attributes["type"] = choices.detail(PLAIN_TYPES)
    if choices.one_in(ONE_IN_2):
        if choices.one_in(ONE_IN_4):
            attributes["subject"] = choices.detail(ODD_VALID_STRINGS)
            plain = False
        else:
            attributes["subject"] = choices.detail(SUBJECTS)
    time_kind = choices.pick(TIME_KINDS)
    if time_kind == "plain":
        attributes["time"] = choices.detail(PLAIN_TIMES)
    elif time_kind == "odd":
        attributes["time"] = choices.detail(ODD_VALID_TIMES)
        plain = False
    if choices.number(0, 3) == 0:
        attributes["dataschema"] = choices.detail(PLAIN_SCHEMAS)
    for _ in range(choices.number(0, 2)):
        attributes[choices.detail(EXTENSION_NAMES)] = choices.detail(EXTENSION_VALUES)
    data_kind = choices.pick(DATA_KINDS)
    data: Any = None
    if data_kind == "json":
        data = choices.detail(JSON_DATA)
        if choices.number(0, 1):
            attributes["datacontenttype"] = "application/json"
    elif data_kind == "text":
        data = choices.detail(TEXT_DATA)
        attributes["datacontenttype"] = "text/plain; charset=utf-8"
    elif data_kind == "bytes":
        data = choices.detail(BYTES_DATA)
        attributes["datacontenttype"] = "application/octet-stream"
    return FuzzEvent(attributes, data_kind, data, plain=plain)


# -- attribute mutations --------------------------------------------------------------------------

MUTATIONS = (
    "drop",
    "empty",
    "specversion",
    "source",
    "time",
    "dataschema",
    "datacontenttype",
    "forbidden-character",
    "odd-string",
    "name",
    "hop-counter",
)
STRUCTURED_MUTATIONS = (*MUTATIONS, "extension-type", "context-type")
REQUIRED = ("id", "source", "specversion", "type")
MAY_BE_EMPTY = ("id", "source", "type", "subject", "specversion")
HOP_COUNTERS = ("0", "1", "2", "255", "abc", "-5")
EXTENSION_TYPES: tuple[Any, ...] = (2**31, -(2**31) - 1, 1.5, {"a": 1}, [1], None, True, 2**31 - 1)
CONTEXT_TYPES: tuple[Any, ...] = (5, True, ["x"], {"a": "b"})
STRING_PLACES = ("start", "end", "middle")


def mutated(choices: Choices, event: FuzzEvent, binary: bool) -> FuzzEvent:
    """The event with one thing changed that may or may not make it invalid."""
    kind = choices.pick(MUTATIONS if binary else STRUCTURED_MUTATIONS)
    attributes = dict(event.attributes)
    target: str
    if kind == "drop":
        target = choices.detail(REQUIRED)
        del attributes[target]
    elif kind == "empty":
        target = choices.detail(MAY_BE_EMPTY)
        attributes[target] = ""
    elif kind in ("specversion", "source", "time", "dataschema", "datacontenttype"):
        target = kind
        attributes[target] = choices.detail(MUTATED_VALUES[kind])
    elif kind in ("forbidden-character", "odd-string"):
        names = [name for name, value in attributes.items() if isinstance(value, str)]
        names = [name for name in names if name not in ("specversion", "time", "source")]
        target = choices.detail(names or ["id"])
        pool = FORBIDDEN_CHARACTERS if kind == "forbidden-character" else ODD_VALID_STRINGS
        text = str(attributes.get(target, "x"))
        character = choices.detail(pool)
        middle = len(text) // 2
        attributes[target] = {
            "start": character + text,
            "end": text + character,
            "middle": text[:middle] + character + text[middle:],
        }[choices.detail(STRING_PLACES)]
    elif kind == "name":
        target = choices.detail(BAD_NAMES)
        attributes[target] = "v"
    elif kind == "hop-counter":
        target = "knativebrokerttl"
        attributes[target] = choices.detail(HOP_COUNTERS)
    elif kind == "extension-type":
        target = choices.detail(EXTENSION_NAMES)
        attributes[target] = choices.detail(EXTENSION_TYPES)
    else:  # a context attribute of a JSON type other than string
        target = choices.detail(("id", "source", "type", "subject", "time"))
        attributes[target] = choices.detail(CONTEXT_TYPES)
    return replace(event, attributes=attributes, mutated=target, plain=False)


MUTATED_VALUES: dict[str, tuple[str, ...]] = {
    "specversion": SPECVERSIONS,
    "source": BAD_SOURCES + ODD_VALID_SOURCES,
    "time": BAD_TIMES + ODD_VALID_TIMES,
    "dataschema": BAD_SCHEMAS + PLAIN_SCHEMAS,
    "datacontenttype": BAD_CONTENT_TYPES + ODD_VALID_CONTENT_TYPES,
}


# -- binary mode ----------------------------------------------------------------------------------

# The HTTP binding 3.1.3.2: printable ASCII but space, double quote and percent stays as it is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
VALUE_SUFFIXES = (
    b"%C0%A0",
    b"%ED%A0%80",
    b"%FF",
    b"%E2%82",
    b"%F4%90%80%80",
    b"%0A",
    b"%00",
    b"%7F",
    b"%C2%85",
    b"%EF%BF%BE",
    b"%EF%B7%90",
    b"%F0%9F%BF%BF",
    b"\xc3\xa9",
    b"%C3%A9",
    b"%c3%a9",
    b"%2541",
    b"%zz",
    b"%",
    b"%4",
    b"%F0%9F%98%80",
)


def attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def header_value(value: Any) -> bytes:
    """An attribute value as the binding says a sender writes it."""
    return quote(attribute_text(value), safe=_HEADER_SAFE).encode("ascii")


def binary_body(event: FuzzEvent) -> bytes:
    if event.data_kind == "json":
        return json.dumps(event.data).encode()
    if event.data_kind == "text":
        return str(event.data).encode()
    if event.data_kind == "bytes":
        return bytes(event.data)
    return b""


BINARY_WIRE = ("plain",) * 8 + (
    "suffix",
    "quoted",
    "needless-escape",
    "name-case",
    "duplicate",
    "ce-datacontenttype",
    "underscore",
    "whitespace",
    "content-type",
)
BINARY_CONTENT_TYPES = (
    None,
    b"",
    b"???",
    b"application/cloudevents+xml",
    b"application/cloudevents",
    b"multipart/form-data; boundary=x",
    b"application/json, text/plain",
    b"text/plain; charset",
    b"TEXT/PLAIN",
)
QUOTE_CLOSINGS = (b'"', b"", b'\\"')
SPACES = (b" ", b"\t", b"  ")


def binary_parts(
    choices: Choices, event: FuzzEvent
) -> tuple[list[tuple[bytes, bytes]], bytes, bool]:
    """Headers and body of a binary-mode request; whether the wire form was left ordinary."""
    headers: list[tuple[bytes, bytes]] = []
    content_type = None
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            content_type = attribute_text(value).encode("utf-8", "surrogatepass")
            continue
        headers.append((b"ce-" + name.encode("utf-8", "surrogatepass"), header_value(value)))
    how = choices.pick(BINARY_WIRE)
    ordinary = how == "plain" or not headers
    if not ordinary:
        index = choices.number(0, len(headers) - 1)
        name, value = headers[index]
        if how == "suffix":
            headers[index] = (name, value + choices.detail(VALUE_SUFFIXES))
        elif how == "quoted":
            inner = choices.detail((value, value + b'\\"x', value + b"\\\\", b"a\\" + value))
            headers[index] = (name, b'"' + inner + choices.detail(QUOTE_CLOSINGS))
        elif how == "needless-escape":
            headers[index] = (name, b"".join(b"%%%02x" % byte for byte in value[:3]) + value[3:])
        elif how == "name-case":
            headers[index] = (choices.detail((name.upper(), name.title())), value)
        elif how == "duplicate":
            headers.insert(index, (name, choices.detail((value, value + b"2"))))
        elif how == "ce-datacontenttype":
            headers.append((b"ce-datacontenttype", b"application/json"))
        elif how == "underscore":
            headers[index] = (name.replace(b"ce-", b"ce_"), value)
        elif how == "whitespace":
            headers[index] = (name, choices.detail(SPACES) + value + b" ")
        else:
            content_type = choices.detail(BINARY_CONTENT_TYPES)
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    return headers, binary_body(event), ordinary


# -- structured mode ------------------------------------------------------------------------------

_PLACEHOLDER = "\u2063PLACEHOLDER\u2063"
BODY_REPLACEMENTS = (  # raw bytes put in place of a string's content
    b"\xff",
    b"\xc0\xa0",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\\ud800",
    b"\\udfff",
    b"\\ud83d\\ude00",
    b"\\u0000",
    b"\\u001f",
    b"\\u007f",
    b"\\ufffe",
    b"\\udbff\\udfff",
    b"\\u00e9",
    b"\x7f",
    b"\t",
)
JSON_BREAKAGES = (
    ("bom", lambda body: b"\xef\xbb\xbf" + body),
    ("trailing-junk", lambda body: body + b" x"),
    ("trailing-comma", lambda body: body[:-1] + b",}"),
    ("truncated", lambda body: body[: len(body) // 2]),
    ("single-quotes", lambda body: body.replace(b'"', b"'")),
    ("comment", lambda body: b"/* c */" + body),
    ("nan", lambda body: body[:-1] + b',"fuzzext":NaN}'),
    ("infinity", lambda body: body[:-1] + b',"fuzzext":-Infinity}'),
    ("not-object", lambda body: b"[" + body + b"]"),
    ("scalar", lambda body: b'"just a string"'),
    ("null", lambda body: b"null"),
    ("empty", lambda body: b""),
    ("whitespace", lambda body: b" \n\t" + body + b"\r\n "),
    ("duplicate-id", lambda body: b'{"id":"dup",' + body[1:]),
    ("raw-control", lambda body: body.replace(b'"specversion"', b'"spec\x01version"', 1)),
)


def structured_document(event: FuzzEvent) -> dict[str, Any]:
    document = dict(event.attributes)
    if event.data_kind in ("json", "text"):
        document["data"] = event.data
    elif event.data_kind == "bytes":
        document["data_base64"] = base64.b64encode(bytes(event.data)).decode("ascii")
    return document


def dump(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


STRUCTURED_WIRE = ("plain",) * 8 + (
    "replace-string",
    "break-json",
    "integer-literal",
    "data-and-base64",
    "bad-base64",
    "nesting",
)
REPLACED = ("id", "type", "subject", "data")
BAD_BASE64: tuple[Any, ...] = ("QQ", "Q===", "@@@@", 5, "eA==\n", "")
DEPTHS = (MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, 1000, 100_000)


def structured_body(choices: Choices, event: FuzzEvent) -> tuple[bytes, bool, str | None]:
    """A structured body; whether it is ordinary; the attribute a breakage aimed at."""
    document = structured_document(event)
    how = choices.pick(STRUCTURED_WIRE)
    if how == "plain":
        return dump(document), True, None
    if how == "replace-string":
        target = choices.detail(REPLACED)
        document[target] = _PLACEHOLDER
        replacement = choices.detail(BODY_REPLACEMENTS)
        body = dump(document).replace(_PLACEHOLDER.encode(), replacement)
        return body, False, None if target == "data" else target
    if how == "break-json":
        _, breakage = choices.detail(JSON_BREAKAGES)
        return breakage(dump(document)), False, None
    if how == "integer-literal":
        document["fuzzext"] = _PLACEHOLDER
        literal = choices.detail(BAD_INTEGER_LITERALS).encode()
        return dump(document).replace(b'"' + _PLACEHOLDER.encode() + b'"', literal), False, None
    if how == "data-and-base64":
        document["data"] = "x"
        document["data_base64"] = "eA=="
        return dump(document), False, "data_base64"
    if how == "bad-base64":
        document.pop("data", None)
        document["data_base64"] = choices.detail(BAD_BASE64)
        return dump(document), False, "data_base64"
    depth = choices.detail(DEPTHS)
    document["data"] = _PLACEHOLDER
    nested = b"[" * depth + b"]" * depth
    body = dump(document).replace(b'"' + _PLACEHOLDER.encode() + b'"', nested)
    return body, False, None


STRUCTURED_CONTENT_TYPES = (
    *((b"application/cloudevents+json", True),) * 8,
    (b"application/cloudevents+json", True),
    (b"application/cloudevents+json; charset=utf-8", True),
    (b"APPLICATION/CloudEvents+JSON", False),
    (b"application/cloudevents+json;", False),
    (b" application/cloudevents+json ", False),
    (b"application/cloudevents+json; charset=latin-1", False),
    (b"application/cloudevents+avro", False),
    (b"application/cloudevents", False),
    (b"application/cloudevents-batch+json", False),
    (b"application/cloudevents+jsonx", False),
)


# -- whole requests -------------------------------------------------------------------------------

MODES = ("binary", "structured")
MODES_WITH_BATCH = ("binary", "structured", "batch")


def event_request(choices: Choices, *, method: bytes, target: bytes, batches: bool) -> RawRequest:
    """A request with an event (or a batch) in some mode, maybe mutated, maybe odd on the wire."""
    event = valid_event(choices)
    mode = choices.pick(MODES_WITH_BATCH if batches else MODES)
    if choices.one_in(ONE_IN_2):
        event = mutated(choices, event, binary=mode == "binary")
    meta: dict[str, object] = {"mode": mode, "mutated": event.mutated}
    if mode == "binary":
        headers, body, ordinary = binary_parts(choices, event)
        if not ordinary:
            meta["mutated"] = meta["mutated"] or "header"
    elif mode == "structured":
        body, ordinary, aimed = structured_body(choices, event)
        meta["mutated"] = meta["mutated"] or aimed or ("body" if not ordinary else None)
        content_type, usual = choices.pick(STRUCTURED_CONTENT_TYPES)
        ordinary = ordinary and usual
        headers = [(b"Content-Type", content_type)]
        if choices.one_in(ONE_IN_6):  # ce- headers beside a structured body: the body wins
            headers.append((b"ce-id", b"from-a-header"))
            headers.append((b"ce-specversion", b"0.1"))
    else:
        others = [valid_event(choices) for _ in range(choices.number(0, 2))]
        entries = [structured_document(item) for item in [event, *others]]
        if choices.one_in(ONE_IN_10):
            entries = []
        body = dump(entries)
        ordinary = all(item.plain for item in others)
        headers = [(b"Content-Type", BATCH)]
    size = choices.pick(BODY_SIZES)
    if size is not None:
        body = pad_body(body, size, mode)
        ordinary = False
    plain = ordinary and event.plain and event.mutated is None
    request = RawRequest(
        method=method,
        target=target,
        headers=((b"Host", b"127.0.0.1"), *headers),
        body=body,
        label=f"{mode}{' plain' if plain else ''} {meta['mutated'] or ''}".strip(),
        meta={**meta, "plain": plain},
    )
    sent = sent_some_way(choices, request)
    # Extra headers (even plain ones) make it less than plain only if they are odd.
    return replace(sent, meta={**sent.meta, "plain": plain and not sent.odd_head})


def pad_body(body: bytes, size: int, mode: str) -> bytes:
    """The body made exactly `size` bytes long, staying what it was (binary data is opaque)."""
    if mode == "binary":
        return (body + b"x" * size)[:size]
    if mode == "batch":
        return (body + b" " * size)[:size]  # JSON allows trailing whitespace
    # A structured event: pad inside an extension string, so that it stays valid JSON.
    probe = body[:-1] + b',"fuzzpad":""}'
    missing = size - len(probe)
    if missing < 0 or not body.endswith(b"}"):
        return (body + b" " * size)[:size]
    return body[:-1] + b',"fuzzpad":"' + b"p" * missing + b'"}'
