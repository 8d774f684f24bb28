"""Reading a request's body and `ce-*` headers from the WSGI environ, within the size limit."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

from kit.receive import ce_headers, read_body
from wire.spec import InvalidEvent

LIMIT = 10


def environ(body: bytes, *, length: str | None = None, terminated: bool = False) -> dict[str, Any]:
    """The environ a WSGI server hands over: a declared length, or a chunked (terminated) body."""
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(body)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    if terminated:
        env["wsgi.input_terminated"] = True
    return env


# Each case builds its environ when it runs: a stream read once is empty the next time.
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (lambda: environ(b"0123456789", length="10"), b"0123456789"),
        (lambda: environ(b"0123456789", length="4"), b"0123"),
        (lambda: environ(b"", length="0"), b""),
        (lambda: environ(b"0123456789", length=""), b""),
        (lambda: environ(b"0123456789"), b""),
        (lambda: environ(b"0123456789", terminated=True), b"0123456789"),
        (lambda: environ(b"", terminated=True), b""),
        (lambda: environ(b"0123456789", length="10", terminated=True), b"0123456789"),
    ],
)
def test_the_body_is_what_the_length_declares_or_the_whole_chunked_stream(
    env: Callable[[], dict[str, Any]], expected: bytes
) -> None:
    assert read_body(env(), LIMIT) == expected


@pytest.mark.parametrize(
    ("env", "status", "message"),
    [
        (
            lambda: environ(b"01234567890", length="11"),
            413,
            "the event is 11 bytes; the limit is 10",
        ),
        (lambda: environ(b"x", length="99999"), 413, "the event is 99999 bytes; the limit is 10"),
        (
            lambda: environ(b"01234567890", terminated=True),
            413,
            "the event is larger than the limit of 10 bytes",
        ),
        (lambda: environ(b"x", length="ten"), 400, "Content-Length 'ten' is not a number"),
    ],
)
def test_a_body_over_the_limit_is_a_413_and_a_bad_length_a_400(
    env: Callable[[], dict[str, Any]], status: int, message: str
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        read_body(env(), LIMIT)
    assert (refused.value.status, refused.value.message) == (status, message)


def test_an_oversized_declared_body_is_refused_before_it_is_read() -> None:
    env = environ(b"01234567890", length="11")
    with pytest.raises(InvalidEvent):
        read_body(env, LIMIT)
    assert env["wsgi.input"].tell() == 0


def test_ce_headers_are_the_http_ce_keys_as_header_names() -> None:
    env = {
        "HTTP_CE_ID": "1",
        "HTTP_CE_SPECVERSION": "1.0",
        "HTTP_CE_MY_EXT": "x",
        "HTTP_CEX": "not a ce- header",
        "HTTP_CONTENT_TYPE": "application/json",
        "CE_ID": "not a header",
    }
    assert ce_headers(env) == [("CE-ID", "1"), ("CE-SPECVERSION", "1.0"), ("CE-MY-EXT", "x")]
