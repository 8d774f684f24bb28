"""Requests to the services' JSON APIs for fuzzing: valid bodies, and bodies broken in one field.

Each request's `meta` says what a correct service answers: `statuses` (the documented ones
for this request), `field` (the JSON path of the culprit, when one field is at fault: the
error body must name it), and `known` (a GET of something created earlier: 200, not 404).
A GET of a created resource names it `{known}` in the target; the test puts in an id that
a 201 returned earlier.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.choices import ONE_IN_2, ONE_IN_4, ONE_IN_6, Choices
from tests.fuzz.event_requests import FORBIDDEN_CHARACTERS
from tests.fuzz.http_requests import BODY_SIZES, Framing, RawRequest, sent_some_way
from wire.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH

KNOWN = b"{known}"
#: What any JSON API request may be answered with besides its own statuses: the limits.
LIMIT_STATUSES = frozenset({408, 413, 414, 431})
#: Values of the wrong JSON type for a string field, and for an integer field.
NOT_STRINGS: tuple[Any, ...] = (1, None, [], {}, True, 1.5)
NOT_INTEGERS: tuple[Any, ...] = (None, [], {}, True, "1", 1.5)
ODD_VALID_NAMES = ("Zo\u00eb", "\u540d\u524d", "x" * 200, "\U0001f600 emoji", "O'Brien")
JSON_CONTENT_TYPES = (
    (b"application/json", True),
    (b"application/json; charset=utf-8", True),
    (b"application/merge-patch+json", True),
    (b"text/plain", False),
    (b"application/x-www-form-urlencoded", False),
    (b"", False),
    (None, False),
    (b"application/json, text/plain", None),
)
BAD_BODIES = (  # not an acceptable JSON document at all: 400, no field to blame
    b"",
    b"{",
    b"[]",
    b'"text"',
    b"1",
    b"null",
    b"{'a': 1}",
    b'{"a": NaN}',
    b"\xff\xfe",
    b'{"name": "\xc0\xa0"}',
    b"{} x",
)


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _with_lone_surrogate(document: dict[str, Any], key: str) -> bytes:
    marker = "\u2063LONE\u2063"
    document = {**document, key: marker}
    return _json(document).replace(marker.encode(), b"\\ud800")


def _nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b', "email": "a@b.c"}'


BREAKAGES = ("field",) * 6 + ("missing", "extra", "forbidden", "surrogate", "whole", "deep")
EXTRA_FIELDS = ("admin", "id", "x" * 300)
API_DEPTHS = (MAX_JSON_DEPTH, 1000, 100_000)


def broken_body(
    choices: Choices, document: dict[str, Any], fields: dict[str, tuple[Any, ...]]
) -> tuple[bytes, str | None]:
    """A body with one field broken (its JSON path returned), or a body broken as a whole."""
    how = choices.pick(BREAKAGES)
    strings = [key for key, value in document.items() if isinstance(value, str)]
    if how == "field":
        name = choices.detail(sorted(fields))
        return _json({**document, name: choices.detail(fields[name])}), name
    if how == "missing":
        name = choices.detail(sorted(document))
        return _json({key: value for key, value in document.items() if key != name}), name
    if how == "extra":
        name = choices.detail(EXTRA_FIELDS)
        return _json({**document, name: True}), name
    if how == "forbidden" and strings:
        name = choices.detail(strings)
        character = choices.detail(FORBIDDEN_CHARACTERS)
        return _json({**document, name: f"{document[name]}{character}"}), name
    if how == "surrogate" and strings:
        name = choices.detail(strings)
        return _with_lone_surrogate(document, name), name
    if how == "deep":
        return _nested(choices.detail(API_DEPTHS)), None
    return choices.detail(BAD_BODIES), None


def _pad(body: bytes, size: int) -> bytes:
    """The body made `size` bytes long with JSON whitespace (it stays the same document)."""
    return body + b" " * max(0, size - len(body))


CONTENT_TYPE_CHOICES = JSON_CONTENT_TYPES[:1] * 8 + JSON_CONTENT_TYPES


def json_call(
    choices: Choices,
    method: bytes,
    target: bytes,
    document: dict[str, Any],
    fields: dict[str, tuple[Any, ...]],
    *,
    ok: frozenset[int],
) -> RawRequest:
    """A request with a JSON body: valid (`ok` statuses) or broken in one field (400)."""
    field: str | None = None
    statuses = set(ok)
    if choices.one_in(ONE_IN_2):
        body, field = broken_body(choices, document, fields)
        statuses = {400}
        label = f"broken {field or 'body'}"
    else:
        body = _json(document)
        label = "valid"
    content_type, is_json = choices.pick(CONTENT_TYPE_CHOICES)
    if is_json is False:
        statuses, field, label = {415}, None, f"{label} content-type:{content_type!r}"
    elif is_json is None:  # a list of types: a service may take the first or refuse it
        statuses, field = statuses | {400, 415}, None
    size = choices.pick(BODY_SIZES)
    if size is not None:
        body = _pad(body, size)
        label = f"{label} size:{size}"
        if size > MAX_BODY_BYTES:
            # Too large: 413, unless the service first saw that it is not JSON at all.
            statuses, field = {413} | ({415} if is_json is False else set()), None
    headers: list[tuple[bytes, bytes]] = [(b"Host", b"127.0.0.1")]
    if content_type is not None:
        headers.append((b"Content-Type", content_type))
    request = RawRequest(method, target, tuple(headers), body, label=label)
    return _finish(choices, request, statuses, field)


def _finish(
    choices: Choices, request: RawRequest, statuses: set[int], field: str | None
) -> RawRequest:
    request = sent_some_way(choices, request)
    return replace(request, meta={"statuses": frozenset(statuses), "field": field, "known": False})


MISSING_IDS = (
    b"nope",
    b"%00",
    b"%C0%A0",
    b"%FF",
    b"%ED%A0%80",
    b"%F0%9F%98%80",
    b"x" * 5000,
    b"..%2F..%2Fetc",
    b"a;b",
    b"'%20OR%201=1",
)


def get_call(choices: Choices, prefix: bytes) -> RawRequest:
    """A GET of something created earlier (200) or of an id nobody made (404)."""
    known = choices.one_in(ONE_IN_2)
    target = prefix + (KNOWN if known else choices.detail(MISSING_IDS))
    request = RawRequest(
        b"GET", target, ((b"Host", b"127.0.0.1"),), framing=Framing.NONE, label="get"
    )
    request = _finish(choices, request, {200} if known else {404}, None)
    return replace(request, meta={**request.meta, "known": known})


# -- the three services ------------------------------------------------------------------------

USER_FIELDS: dict[str, tuple[Any, ...]] = {
    "name": ("", "   ", "x" * 201, *NOT_STRINGS),
    "email": (
        "a",
        "a@b",
        "a @b.c",
        "@b.c",
        "a@b.c" + "c" * 250,
        "a@@b.c",
        "a@b.c\n",
        *NOT_STRINGS,
    ),
}
USER_NAMES = ("Ada", "Ada Lovelace", *ODD_VALID_NAMES)


@st.composite
def user_requests(draw: st.DrawFn) -> RawRequest:
    choices = Choices(draw)
    if choices.one_in(ONE_IN_4):
        return get_call(choices, b"/users/")
    document = {"name": choices.detail(USER_NAMES), "email": f"fz-{choices.tag()}@example.com"}
    return json_call(choices, b"POST", b"/users", document, USER_FIELDS, ok=frozenset({201, 409}))


LINE = {"sku": "tea", "quantity": 2, "unit_price": 450}
ORDER_FIELDS: dict[str, tuple[Any, ...]] = {
    "customer_id": ("", "-x", "a b", "c" * 129, "\u00e9", "c-1\n", *NOT_STRINGS),
    "currency": ("eur", "EURO", "", "E1R", "EUR\n", *NOT_STRINGS),
    "payment_token": ("", "t" * 201, *NOT_STRINGS),
}
LINE_FIELDS: dict[str, tuple[Any, ...]] = {
    "sku": ("", "-tea", "t" * 65, "t a", "\u00e9", "tea\n", *NOT_STRINGS),
    "quantity": (0, 10001, 2.5, -1, *NOT_INTEGERS),
    "unit_price": (-1, 100_000_001, 4.5, *NOT_INTEGERS),
}
LINE_COUNTS = (1, 1, 2, 3, 100)
CUSTOMER_IDS = ("c-1", "customer:42", "C." + "x" * 120)
TOKENS = ("tok_ok", "tok_declined", "t" * 200)
ORDER_BREAKAGES = ("top",) * 3 + ("line", "lines")


@st.composite
def order_requests(draw: st.DrawFn) -> RawRequest:
    choices = Choices(draw)
    if choices.one_in(ONE_IN_4):
        return get_call(choices, b"/orders/")
    count = choices.pick(LINE_COUNTS)
    document: dict[str, Any] = {
        "customer_id": choices.detail(CUSTOMER_IDS),
        "lines": [{**LINE, "sku": f"sku-{index}"} for index in range(count)],
        "currency": "EUR",
        "payment_token": choices.detail(TOKENS),
    }
    how = choices.pick(ORDER_BREAKAGES)
    if how == "line":
        return _broken_line(choices, document)
    if how == "lines":
        return _broken_lines(choices, document)
    return json_call(choices, b"POST", b"/orders", document, ORDER_FIELDS, ok=frozenset({201}))


LINE_BREAKAGES = (*sorted(LINE_FIELDS), "extra", "missing")
JSON_HEADERS = ((b"Host", b"127.0.0.1"), (b"Content-Type", b"application/json"))


def _broken_line(choices: Choices, document: dict[str, Any]) -> RawRequest:
    """One field of one line broken (or missing, or extra): the error names lines/<i>/<field>."""
    index = choices.number(0, len(document["lines"]) - 1)
    line = dict(document["lines"][index])
    name = choices.pick(LINE_BREAKAGES)
    if name == "extra":
        line["gift_wrap"] = True
        name = "gift_wrap"
    elif name == "missing":
        name = choices.detail(sorted(LINE_FIELDS))
        del line[name]
    else:
        line[name] = choices.detail(LINE_FIELDS[name])
    lines = [*document["lines"]]
    lines[index] = line
    body = _json({**document, "lines": lines})
    request = RawRequest(
        b"POST", b"/orders", JSON_HEADERS, body, label=f"broken lines/{index}/{name}"
    )
    return _finish(choices, request, {400}, f"lines/{index}/{name}")


LINES_BREAKAGES = ("empty", "too-many", "twice", "not-a-list")
NOT_LISTS: tuple[Any, ...] = ({"sku": "tea"}, "tea", None, 3)


def _broken_lines(choices: Choices, document: dict[str, Any]) -> RawRequest:
    """The list of lines broken as a whole: empty, too long, a sku twice, not a list."""
    how = choices.pick(LINES_BREAKAGES)
    field = "lines"
    lines: Any
    if how == "empty":
        lines = []
    elif how == "too-many":
        lines = [{**LINE, "sku": f"sku-{index}"} for index in range(101)]
    elif how == "twice":
        lines = [LINE, LINE]
        field = "lines/1/sku"
    else:
        lines = choices.detail(NOT_LISTS)
    body = _json({**document, "lines": lines})
    request = RawRequest(b"POST", b"/orders", JSON_HEADERS, body, label=f"broken lines ({how})")
    return _finish(choices, request, {400}, field)


STOCK_FIELDS: dict[str, tuple[Any, ...]] = {
    "available": (-1, 10**12 + 1, 1.5, 10**30, *NOT_INTEGERS)
}
GOOD_SKUS = (b"tea", b"coffee-beans", b"A.b_c-1", b"s" * 57)
BAD_SKUS = (b"-x", b"a%20b", b"%C3%A9", b"s" * 65, b"%00", b"..", b"%FF", b"a%0Ab", b"_x")
AVAILABLE = (0, 1, 10, 10**12, 5.0)


@st.composite
def stock_requests(draw: st.DrawFn) -> RawRequest:
    choices = Choices(draw)
    if choices.one_in(ONE_IN_4):
        return get_call(choices, b"/stock/")
    if choices.one_in(ONE_IN_6):
        # The sku in the path is checked before the body is read: 400 naming `sku`.
        sku = choices.detail(BAD_SKUS)
        request = json_call(
            choices, b"PUT", b"/stock/" + sku, {"available": 1}, STOCK_FIELDS, ok=frozenset({400})
        )
        statuses = {400} | ({413} if 413 in request.meta["statuses"] else set())  # type: ignore[operator]
        return replace(
            request,
            meta={**request.meta, "statuses": frozenset(statuses), "field": "sku"},
            label=f"bad sku {sku!r} {request.label}",
        )
    sku = choices.detail(GOOD_SKUS) + b"-" + choices.tag().encode()
    document = {"available": choices.detail(AVAILABLE)}
    return json_call(
        choices, b"PUT", b"/stock/" + sku, document, STOCK_FIELDS, ok=frozenset({200, 201})
    )
