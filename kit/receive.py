"""Reading a CloudEvents request straight from the WSGI environ: the kit's hot path."""

from __future__ import annotations

from typing import Any

from wire.spec import InvalidEvent


def ce_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's `ce-*` headers (WSGI spells `ce-foo` as HTTP_CE_FOO)."""
    return [
        (key[5:].replace("_", "-"), value)
        for key, value in environ.items()
        if key.startswith("HTTP_CE_")
    ]


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body; more than `limit` bytes is a 413."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            length = int(declared)
        except ValueError as error:
            raise InvalidEvent(f"Content-Length {declared!r} is not a number") from error
        if length > limit:
            raise InvalidEvent(f"the event is {length} bytes; the limit is {limit}", status=413)
        body: bytes = stream.read(length)
        return body
    if not environ.get("wsgi.input_terminated"):
        return b""
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise InvalidEvent(f"the event is larger than the limit of {limit} bytes", status=413)
    return body
