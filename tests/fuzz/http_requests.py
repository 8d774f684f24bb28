"""Raw HTTP/1.1 requests for fuzzing: a request as parts, its bytes, and what HTTP demands of it.

A `RawRequest` is a request line, header fields as bytes, a body and how the body is framed
(`Framing`). Framing is where HTTP/1.1 is most often got wrong, so the model knows which
framings a server must refuse (RFC 9112 6.1-6.3: an invalid or conflicting Content-Length,
a Transfer-Encoding whose last coding is not chunked, malformed chunks: 400 and close), after
which it must close (Transfer-Encoding together with Content-Length, Transfer-Encoding in
HTTP/1.0, `Connection: close`, HTTP/1.0 without keep-alive), and which leave the byte stream
exactly as the test meant it (the only ones after which another request may follow).

`connection_plans` lays a list of requests out on connections: pipelined in order, with a
request that must be the last of its connection (it closes it, or its framing is broken)
moved to the end, or onto a connection of its own.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tests.fuzz.choices import ONE_IN_2, Choices
from tests.support.raw_http import Plan, Write
from wire.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URL_BYTES

#: How long a client that sent `Expect: 100-continue` waits for the 100 before sending anyway.
CONTINUE_WAIT_SECONDS = 0.25


class Framing(enum.Enum):
    """How the body travels, and whether the server can know where the request ends."""

    LENGTH = "content-length"  # exact
    NONE = "no body headers"  # exact when the body is empty
    CHUNKED = "chunked"  # exact
    SHORT_LENGTH = "content-length shorter than the body"  # the rest is junk: 400, close
    BAD_LENGTH = "invalid content-length"  # 400, close
    TWO_LENGTHS = "two different content-lengths"  # 400, close
    LENGTH_AND_CHUNKED = "content-length and chunked"  # may be served; then close
    UNKNOWN_CODING = "transfer-encoding not ending in chunked"  # 400, close
    BAD_CHUNKS = "malformed chunked body"  # 400, close


EXACT_FRAMINGS = frozenset({Framing.LENGTH, Framing.NONE, Framing.CHUNKED})
#: Framings a server must refuse with 400 and then close (RFC 9112 6.3, 7.1).
REFUSED_FRAMINGS = frozenset(
    {Framing.BAD_LENGTH, Framing.TWO_LENGTHS, Framing.UNKNOWN_CODING, Framing.BAD_CHUNKS}
)

BAD_LENGTH_VALUES = (b"abc", b"-1", b"1.5", b"0x10", b"+5", b"5 5", b"", b"1" * 30, b"\x005")
UNKNOWN_CODINGS = (b"gzip", b"chunked, gzip", b"identity", b"chunked, chunked", b"x")
# Each is a chunked body a parser can see is broken without waiting for more bytes.
BAD_CHUNK_BODIES = (
    b"zz\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    b"5 5\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\n0\n\n\x01\r\n\r\n",
    b"\r\n\r\n\x01\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
)
#: Bytes after a body that is shorter than its Content-Length claims: no request starts so.
JUNK = b"\x01junk\r\n\r\n"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class RawRequest:
    """One request as parts. `body` is what the server should read as the body."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""
    framing: Framing = Framing.LENGTH
    version: bytes = b"HTTP/1.1"
    chunk_sizes: tuple[int, ...] = ()  # chunked: sizes of the chunks, the last may be short
    chunk_extension: bool = False
    trailer: bool = False
    framing_detail: bytes = b""  # BAD_LENGTH: the value; UNKNOWN_CODING: the codings; ...
    pause_at: int | None = None  # write this many bytes, pause, then the rest
    pause_seconds: float = 0.0
    wait_for_continue: bool = False  # send the head, wait for 100 Continue, then the body
    odd_head: bool = False  # bytes in the head a server may refuse or reinterpret
    label: str = ""  # what kind of case this is (tallies, messages)
    meta: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    # -- what HTTP makes of it --------------------------------------------------------------

    @property
    def is_head(self) -> bool:
        return self.method == b"HEAD"

    @property
    def valid_version(self) -> bool:
        return self.version in (b"HTTP/1.1", b"HTTP/1.0")

    @property
    def names_are_tokens(self) -> bool:
        """Every header name is an RFC 9110 token (a server may refuse the request if not)."""
        return all(_TOKEN.fullmatch(name) for name, _ in self.all_headers())

    @property
    def faulty_framing(self) -> bool:
        """RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding is treated as faulty."""
        return self.version == b"HTTP/1.0" and self.framing is Framing.CHUNKED

    @property
    def exact(self) -> bool:
        """The server sees exactly this request, and the stream goes on after it."""
        if self.framing is Framing.NONE and self.body:
            return False
        return (
            self.framing in EXACT_FRAMINGS
            and self.valid_version
            and not self.odd_head
            and self.names_are_tokens
            and not self.faulty_framing
        )

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header(b"connection") or b"").lower()
        if self.version == b"HTTP/1.0":
            return b"keep-alive" in connection
        return b"close" not in connection

    @property
    def must_close_after(self) -> bool:
        """RFC 9112: the server must close the connection after answering this request."""
        if self.framing in REFUSED_FRAMINGS or self.framing is Framing.LENGTH_AND_CHUNKED:
            return True
        if self.version == b"HTTP/1.0" and self.framing is Framing.CHUNKED:
            return True
        return not self.keep_alive and self.valid_version

    @property
    def last_on_connection(self) -> bool:
        """Nothing may follow it: it closes the connection, or the stream is not exact after it."""
        return (
            not self.exact
            or self.must_close_after
            or self.version == b"HTTP/1.0"
            or not self.keep_alive
        )

    @property
    def wants_continue(self) -> bool:
        return (self.header(b"expect") or b"").strip().lower() == b"100-continue"

    @property
    def target_size(self) -> int:
        return len(self.target)

    def framing_headers(self) -> list[tuple[bytes, bytes]]:
        framing = self.framing
        if framing is Framing.LENGTH:
            return [(b"Content-Length", str(len(self.body)).encode())]
        if framing is Framing.NONE:
            return []
        if framing is Framing.CHUNKED:
            return [(b"Transfer-Encoding", self.framing_detail or b"chunked")]
        if framing is Framing.SHORT_LENGTH:
            return [(b"Content-Length", str(len(self.body)).encode())]
        if framing is Framing.BAD_LENGTH:
            return [(b"Content-Length", self.framing_detail)]
        if framing is Framing.TWO_LENGTHS:
            size = str(len(self.body)).encode()
            return [(b"Content-Length", size), (b"Content-Length", size + b"0")]
        if framing is Framing.LENGTH_AND_CHUNKED:
            return [
                (b"Content-Length", str(len(self.body)).encode()),
                (b"Transfer-Encoding", b"chunked"),
            ]
        if framing is Framing.UNKNOWN_CODING:
            return [(b"Transfer-Encoding", self.framing_detail)]
        return [(b"Transfer-Encoding", b"chunked")]  # BAD_CHUNKS

    def all_headers(self) -> list[tuple[bytes, bytes]]:
        return [*self.headers, *self.framing_headers()]

    @property
    def header_bytes(self) -> int:
        """Header names and values together, as wire.limits counts them (a value
        without the whitespace around it, RFC 9110 5.5)."""
        return sum(len(name) + len(value.strip(b" \t")) for name, value in self.all_headers())

    @property
    def header_count(self) -> int:
        return len(self.all_headers())

    @property
    def body_size(self) -> int:
        return len(self.body)

    # -- limits (wire/limits.py) -----------------------------------------------------

    @property
    def over_url_limit(self) -> bool:
        return self.target_size > MAX_URL_BYTES

    @property
    def over_header_limit(self) -> bool:
        return self.header_bytes > MAX_HEADER_BYTES or self.header_count > MAX_HEADER_COUNT

    @property
    def over_body_limit(self) -> bool:
        return self.body_size > MAX_BODY_BYTES

    @property
    def within_limits(self) -> bool:
        return not (self.over_url_limit or self.over_header_limit or self.over_body_limit)

    # -- bytes ---------------------------------------------------------------------------------

    def head_bytes(self) -> bytes:
        lines = [self.method + b" " + self.target + b" " + self.version]
        lines.extend(name + b": " + value for name, value in self.all_headers())
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def body_bytes(self) -> bytes:
        framing = self.framing
        if framing in (Framing.CHUNKED, Framing.LENGTH_AND_CHUNKED):
            return self._chunked()
        if framing is Framing.SHORT_LENGTH:
            return self.body + JUNK
        if framing is Framing.BAD_CHUNKS:
            return self.framing_detail
        if framing is Framing.BAD_LENGTH:
            return b""  # the server cannot know there is a body; it must refuse the head
        return self.body

    def _chunked(self) -> bytes:
        pieces = []
        position = 0
        sizes = list(self.chunk_sizes) or [len(self.body)]
        for size in sizes:
            piece = self.body[position : position + size]
            position += len(piece)
            if piece:
                pieces.append(self._chunk(piece))
        if position < len(self.body):
            pieces.append(self._chunk(self.body[position:]))
        trailer = b"X-Trailer: yes\r\n" if self.trailer else b""
        return b"".join(pieces) + b"0\r\n" + trailer + b"\r\n"

    def _chunk(self, piece: bytes) -> bytes:
        extension = b";name=value" if self.chunk_extension else b""
        return f"{len(piece):x}".encode() + extension + b"\r\n" + piece + b"\r\n"

    def wire(self) -> bytes:
        return self.head_bytes() + self.body_bytes()

    def writes(self) -> list[Write]:
        """The pieces to write: whole, split by a pause, or the body held for 100 Continue."""
        head, body = self.head_bytes(), self.body_bytes()
        if self.wait_for_continue and body:
            return [Write(head), Write(body, pause=CONTINUE_WAIT_SECONDS, after_continue=True)]
        data = head + body
        if self.pause_at is not None and 0 < self.pause_at < len(data):
            return [Write(data[: self.pause_at]), Write(data[self.pause_at :], self.pause_seconds)]
        return [Write(data)]

    def describe(self, limit: int = 600) -> str:
        wire = self.wire()
        shown = repr(wire[:limit]) + (f" ... ({len(wire)} bytes)" if len(wire) > limit else "")
        return f"[{self.label}] {shown}"


def connection_plans(
    requests: Sequence[RawRequest], connections: int
) -> list[tuple[list[RawRequest], Plan]]:
    """Lay requests out on `connections` connections (round robin), each pipelined in order.

    A request that must be the last of its connection goes to the end of it; a second such
    request on one connection gets a connection of its own.
    """
    groups: list[list[RawRequest]] = [[] for _ in range(max(1, connections))]
    for index, request in enumerate(requests):
        groups[index % len(groups)].append(request)
    laid_out: list[list[RawRequest]] = []
    for group in groups:
        ordinary = [request for request in group if not request.last_on_connection]
        final = [request for request in group if request.last_on_connection]
        if ordinary or final:
            laid_out.append(ordinary + final[:1])
        laid_out.extend([request] for request in final[1:])
    return [(group, plan_of(group)) for group in laid_out]


def plan_of(group: Sequence[RawRequest]) -> Plan:
    writes: list[Write] = []
    for request in group:
        writes.extend(request.writes())
    last = group[-1]
    return Plan(
        tuple(_coalesce(writes)),
        expected_answers=len(group),
        head_answers=tuple(request.is_head for request in group),
        wait_for_close=last.must_close_after or last.framing is Framing.SHORT_LENGTH,
    )


def _coalesce(writes: list[Write]) -> list[Write]:
    """Join pieces that are written back to back (one send, as a pipelining client would)."""
    joined: list[Write] = []
    for piece in writes:
        if joined and piece.pause == 0 and not piece.after_continue:
            joined[-1] = replace(joined[-1], data=joined[-1].data + piece.data)
        else:
            joined.append(piece)
    return joined


# -- strategies for the HTTP layer ----------------------------------------------------------------

ODD_HEADER_NAMES = (
    b"X Space",
    # (not "X-Colon:": on the wire that is a valid X-Colon header whose value starts with ":")
    b"X-\xff",
    b"X-\x00",
    b"",
    b"X-Tab\t",
    b"(x)",
    b"X-\x7f",
)
ODD_HEADER_VALUES = (
    b"a\x00b",
    b"a\rb",
    b"a\nb",
    b"\x01",
    b"a\x7fb",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"\xc0\xa0",
    b"a\x0bb",
)
PLAIN_HEADER_VALUES = (
    b"",
    b"1",
    b"  padded  ",
    b"\tTab\t",
    b'"quoted"',
    b"%0A",
    b"%C0%A0",
    b"%00",
    b"x" * 300,
    b"a, b, c",
)


EXTRA_HEADER_COUNTS = (0, 0, 0, 1, 2, 3)
EXTRA_HEADER_KINDS = ("plain", "plain", "odd-name", "odd-value", "fold")
PLAIN_HEADER_NAMES = (b"X-Fuzz", b"X-Request-Id", b"X-B3-Traceid", b"A")


def extra_headers(choices: Choices) -> tuple[tuple[tuple[bytes, bytes], ...], bool]:
    """Arbitrary extra header fields, and whether any is odd (a server may refuse it)."""
    headers: list[tuple[bytes, bytes]] = []
    odd = False
    for _ in range(choices.pick(EXTRA_HEADER_COUNTS)):
        kind = choices.pick(EXTRA_HEADER_KINDS)
        if kind == "plain":
            name = choices.detail(PLAIN_HEADER_NAMES)
            headers.append((name, choices.detail(PLAIN_HEADER_VALUES)))
        elif kind == "odd-name":
            headers.append((choices.detail(ODD_HEADER_NAMES), b"v"))
            odd = True
        elif kind == "odd-value":
            headers.append((b"X-Odd", choices.detail(ODD_HEADER_VALUES)))
            odd = True
        else:  # obs-fold: RFC 9112 5.2 lets a server refuse it or replace it with spaces
            headers.append((b"X-Folded", b"a\r\n  b"))
            odd = True
    return tuple(headers), odd


FRAMING_CHOICES = (
    (Framing.LENGTH,) * 10
    + (Framing.CHUNKED,) * 3
    + (Framing.NONE,)
    + tuple(framing for framing in Framing if framing not in EXACT_FRAMINGS)
)
CHUNKED_SPELLINGS = (b"chunked", b"Chunked", b"CHUNKED")


def framing_of(choices: Choices, body: bytes) -> dict[str, object]:
    """The framing of a body: mostly exact, sometimes broken (as RawRequest keyword arguments)."""
    choice = choices.pick(FRAMING_CHOICES)
    if choice is Framing.NONE and body:
        choice = Framing.LENGTH
    fields: dict[str, object] = {"framing": choice}
    if choice in (Framing.CHUNKED, Framing.LENGTH_AND_CHUNKED):
        count = choices.number(1, 4)
        fields["chunk_sizes"] = tuple(choices.number(1, max(1, len(body))) for _ in range(count))
        fields["chunk_extension"] = choices.detail(ONE_IN_2)
        fields["trailer"] = choices.detail(ONE_IN_2)
        fields["framing_detail"] = choices.detail(CHUNKED_SPELLINGS)
    elif choice is Framing.BAD_LENGTH:
        fields["framing_detail"] = choices.detail(BAD_LENGTH_VALUES)
    elif choice is Framing.UNKNOWN_CODING:
        fields["framing_detail"] = choices.detail(UNKNOWN_CODINGS)
    elif choice is Framing.BAD_CHUNKS:
        fields["framing_detail"] = choices.detail(BAD_CHUNK_BODIES)
    return fields


DELIVERIES = ("whole",) * 40 + ("pause", "continue", "expect-no-wait")
PAUSES = (0.005, 0.02, 0.05)


def delivered(choices: Choices, request: RawRequest) -> RawRequest:
    """How the request is sent: whole (mostly), with a short pause inside, or with 100-continue."""
    how = choices.pick(DELIVERIES)
    if how == "pause":
        size = len(request.head_bytes()) + len(request.body)
        return replace(
            request,
            pause_at=choices.number(1, max(1, size - 1)),
            pause_seconds=choices.detail(PAUSES),
        )
    if how in ("continue", "expect-no-wait") and request.body:
        headers = (*request.headers, (b"Expect", b"100-continue"))
        return replace(request, headers=headers, wait_for_continue=how == "continue")
    return request


def pad_headers_to(request: RawRequest, total: int) -> RawRequest:
    """Add an X-Pad header so that the head's names and values add up to `total` bytes."""
    missing = total - request.header_bytes - len(b"X-Pad")
    if missing < 0:
        return request
    return replace(request, headers=(*request.headers, (b"X-Pad", b"p" * missing)))


def add_headers_to_count(request: RawRequest, count: int) -> RawRequest:
    """Add small header fields until the request has `count` of them."""
    extra = tuple((f"X-N{i}".encode(), b"1") for i in range(max(0, count - request.header_count)))
    return replace(request, headers=(*request.headers, *extra))


def pad_target_to(target: bytes, size: int) -> bytes:
    """A request target of exactly `size` bytes: a query string padded out (or cut)."""
    separator = b"&" if b"?" in target else b"?"
    base = target + separator + b"pad="
    if size <= len(base):
        return target
    return base + b"q" * (size - len(base))


LIMIT_SIZES = (0, -1, 1, 100)
#: Body sizes worth trying: mostly none forced; else around MAX_BODY_BYTES.
BODY_SIZES = (None,) * 300 + (
    MAX_BODY_BYTES - 1,
    MAX_BODY_BYTES,
    MAX_BODY_BYTES + 1,
    MAX_BODY_BYTES + 4096,
)
LIMITS = ("none",) * 15 + ("url", "header-bytes", "header-count")


def limit_probe(choices: Choices, request: RawRequest) -> RawRequest:
    """The request pushed to one limit (just under, at, or just over), or left alone."""
    which = choices.pick(LIMITS)
    if which == "none":
        return request
    delta = choices.pick(LIMIT_SIZES)
    if which == "url":
        request = replace(request, target=pad_target_to(request.target, MAX_URL_BYTES + delta))
    elif which == "header-bytes":
        request = pad_headers_to(request, MAX_HEADER_BYTES + delta)
    else:
        request = add_headers_to_count(request, MAX_HEADER_COUNT + min(delta, 1))
    return replace(request, label=f"{request.label} limit:{which}{delta:+d}")


VERSIONS = ("1.1",) * 16 + ("close", "1.0", "1.0-keep-alive", "odd")
ODD_VERSIONS = (b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1", b"HTTP/1.1x")


def versioned(choices: Choices, request: RawRequest) -> RawRequest:
    """HTTP/1.1 (mostly), `Connection: close`, HTTP/1.0 with or without keep-alive, or odd."""
    how = choices.pick(VERSIONS)
    if how == "close":
        return replace(request, headers=(*request.headers, (b"Connection", b"close")))
    if how == "1.0":
        return replace(request, version=b"HTTP/1.0")
    if how == "1.0-keep-alive":
        headers = (*request.headers, (b"Connection", b"keep-alive"))
        return replace(request, version=b"HTTP/1.0", headers=headers)
    if how == "odd":
        version = choices.detail(ODD_VERSIONS)
        return replace(request, version=version, label=f"{request.label} version:{version!r}")
    return request


def sent_some_way(choices: Choices, request: RawRequest) -> RawRequest:
    """Extra headers, a framing, perhaps a limit, a way of sending it and an HTTP version."""
    extra, odd = extra_headers(choices)
    request = replace(request, headers=(*request.headers, *extra), odd_head=request.odd_head or odd)
    request = replace(request, **framing_of(choices, request.body))  # type: ignore[arg-type]
    request = limit_probe(choices, request)
    request = delivered(choices, request)
    return versioned(choices, request)
