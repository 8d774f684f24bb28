"""Reading one HTTP/1.1 request whole, incrementally, before any thread is spent on it.

`RequestReader` is fed the bytes of a connection as they arrive and says when the first request
among them is complete, or why it is refused: the limits of `wire.limits` (414 target,
431 head, 413 body, from Content-Length before the body is sent) and framing that RFC 9112
calls invalid (400; a malformed chunked body included). Parsing is httptools' (llhttp, the
parser of Node.js), as in the broker's own server. The services' gunicorn worker
(`kit.worker`) uses it so that a slow or idle client costs a buffer, not a thread.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httptools

from wire.errors import Problem
from wire.http_binding import repeated_header
from wire.limits import (
    HEADERS_TOO_LARGE,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADER_COUNT,
    MAX_URL_BYTES,
    TARGET_TOO_LONG,
    TOO_MANY_HEADERS,
    TRAILERS_TOO_LARGE,
    body_too_large,
)
from wire.spec import InvalidEvent, check_attribute_name

# An Expect field in a complete head (a line of its own: llhttp refuses obsolete line folding).
_EXPECT = re.compile(rb"\r\nexpect[ \t]*:[^\r\n]*(?=\r\n)", re.IGNORECASE)


class Refusal(Problem):
    """A request answered without reaching the application; the connection closes after it."""

    def __init__(
        self, status: int, message: str, limit: int | None = None, attribute: str | None = None
    ) -> None:
        super().__init__(status, message, attribute=attribute, limit=limit)


class _Complete(Exception):
    """Raised from llhttp's callback to stop at the end of the first request."""


class RequestReader:
    """The first request of a byte stream, as far as it has arrived."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._buffer = bytearray()
        self._url_bytes = 0
        self._header_bytes = 0
        self._header_count = 0
        self._trailer_bytes = 0
        self._target = b""
        self._body_bytes = 0
        self._expects_continue = False
        self._content_length: int | None = None
        self._attributes: set[str] = set()
        # An attribute header sent twice, or not naming an attribute (refused in a POST).
        self._fault: InvalidEvent | None = None
        self.head_complete = False
        self.complete = False
        self.refusal: Refusal | None = None

    @property
    def target(self) -> bytes:
        """The request target as far as it arrived (path and query)."""
        return self._target

    @property
    def received(self) -> int:
        return len(self._buffer)

    @property
    def wants_continue(self) -> bool:
        """The head is in, asked for `100 Continue`, and the body is not: the client waits."""
        return (
            self.head_complete
            and self._expects_continue
            and not self.complete
            and self._body_bytes == 0
            and self.refusal is None
        )

    def feed(self, data: bytes) -> None:
        """Take more bytes of the connection."""
        self._buffer += data
        if self.complete or self.refusal is not None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, _Complete) and self.refusal is None:
                raise
        except httptools.HttpParserUpgrade:
            self.complete = True  # the request is whole; what follows is gunicorn's concern
        except httptools.HttpParserError as error:
            if self.refusal is None:
                self.refusal = Refusal(400, f"the request is not valid HTTP/1.1: {_reason(error)}")

    def request_bytes(self) -> bytes:
        """Everything received, with `Expect` taken out of the first head once it was answered
        (so that gunicorn does not answer it a second time)."""
        data = bytes(self._buffer)
        if not (self._expects_continue and self.head_complete):
            return data
        end = data.find(b"\r\n\r\n") + 2
        return _EXPECT.sub(b"", data[:end]) + data[end:]

    # -- llhttp callbacks --------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes <= MAX_URL_BYTES:
            self._target += url
        if self._url_bytes > MAX_URL_BYTES:
            self._refuse(*TARGET_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_complete:  # a chunked body's trailers: bounded on their own
            self._trailer_bytes += len(name) + len(value)
            if self._trailer_bytes > MAX_HEADER_BYTES:
                self._refuse(*TRAILERS_TOO_LARGE)
            return
        self._header_count += 1
        value = value.strip(b" \t")  # RFC 9110 5.5: OWS is not part of a field value
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(*HEADERS_TOO_LARGE)
        if self._header_count > MAX_HEADER_COUNT:
            self._refuse(*TOO_MANY_HEADERS)
        lower = name.lower()
        if lower.startswith(b"ce-"):
            attribute = lower[3:].decode("latin-1")
            if self._fault is None:
                # WSGI cannot carry these faithfully (it joins repeats; gunicorn drops names
                # with "_"): the event would be read without them, so they are refused here.
                if attribute in self._attributes:
                    self._fault = repeated_header(attribute)
                else:
                    try:
                        check_attribute_name(attribute)
                    except InvalidEvent as error:
                        self._fault = error
            self._attributes.add(attribute)
        if lower == b"expect" and value.strip().lower() == b"100-continue":
            self._expects_continue = True
        elif lower == b"content-length" and value.strip().isdigit():
            self._content_length = int(value)  # llhttp refuses a malformed or repeated one

    def on_headers_complete(self) -> None:
        self.head_complete = True
        at_events = urlsplit(self._target).path in (b"/", b"")  # where the kit takes events
        if not (self._parser.get_method() == b"POST" and at_events):
            self._fault = None
        if self._parser.get_http_version() != "1.1":
            self._expects_continue = False  # RFC 9110 10.1.1: ignored in HTTP/1.0
        if self._content_length is not None and self._content_length > MAX_BODY_BYTES:
            self._refuse(*body_too_large())

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY_BYTES:
            self._refuse(*body_too_large())

    def on_message_complete(self) -> None:
        if self._fault is not None:  # refused once the request is whole: limits come first
            self.refusal = Refusal(400, self._fault.message, attribute=self._fault.attribute)
        else:
            self.complete = True
        raise _Complete

    def _refuse(self, status: int, message: str, limit: int) -> None:
        self.refusal = Refusal(status, message, limit)
        raise _Complete


def _reason(error: Exception) -> str:
    """llhttp's reason, without the bytes it quotes."""
    text = str(error) or type(error).__name__
    return text.split(":")[0][:80]
