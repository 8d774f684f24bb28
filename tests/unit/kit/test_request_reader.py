"""RequestReader: when the first request of a connection is whole, and when it is refused."""

from __future__ import annotations

import pytest

from kit.request_reader import RequestReader
from wire.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URL_BYTES


def read(data: bytes) -> RequestReader:
    reader = RequestReader()
    reader.feed(data)
    return reader


def with_target(size: int) -> bytes:
    return b"GET /" + b"a" * (size - 1) + b" HTTP/1.1\r\nHost: k\r\n\r\n"


def with_header_bytes(total: int) -> bytes:
    # "Host" + "k" is 5 bytes; the pad header's name is 3.
    return b"GET / HTTP/1.1\r\nHost: k\r\nPad: " + b"p" * (total - 8) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (with_target(MAX_URL_BYTES), None),
        (with_target(MAX_URL_BYTES + 1), 414),
        (with_header_bytes(MAX_HEADER_BYTES), None),
        (with_header_bytes(MAX_HEADER_BYTES + 1), 431),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * MAX_HEADER_COUNT + b"\r\n", None),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEADER_COUNT + 1) + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1), 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ],
    ids=[
        "target-at-limit",
        "target-over",
        "headers-at-limit",
        "headers-over",
        "count-at-limit",
        "count-over",
        "body-over-from-content-length",
        "bad-chunk",
        "chunked-and-length",
        "chunked-not-last",
    ],
)
def test_limits_and_framing(data: bytes, status: int | None) -> None:
    reader = read(data)
    if status is None:
        assert reader.refusal is None and reader.complete
    else:
        assert reader.refusal is not None and reader.refusal.status == status


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives() -> None:
    reader = read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    for _ in range(MAX_BODY_BYTES // 65536):
        reader.feed(chunk)
    assert reader.refusal is None and not reader.complete
    reader.feed(b"1\r\nx\r\n")
    assert reader.refusal is not None and reader.refusal.status == 413


def test_a_request_is_whole_only_with_its_body() -> None:
    reader = read(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert reader.head_complete and not reader.complete and reader.wants_continue
    reader.feed(b"ab")
    assert not reader.complete and not reader.wants_continue
    reader.feed(b"cd" + b"GET / HTTP/1.1\r\n")  # the next request may follow at once
    assert reader.complete
    assert (
        reader.request_bytes()
        == b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n"
    )


def test_http_1_0_never_wants_100_continue() -> None:
    reader = read(b"POST / HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert reader.head_complete and not reader.wants_continue


def test_trailers_do_not_count_as_headers() -> None:
    head = with_header_bytes(MAX_HEADER_BYTES).replace(b"GET", b"POST")[:-2]
    reader = read(head + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: yes\r\n\r\n")
    # The head is over by Transfer-Encoding's 25 bytes; without it, it is exactly at the limit.
    assert reader.refusal is not None and reader.refusal.status == 431
    padded = with_header_bytes(MAX_HEADER_BYTES - 25).replace(b"GET", b"POST")[:-2]
    reader = read(padded + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: yes\r\n\r\n")
    assert reader.refusal is None and reader.complete


def test_a_limit_is_refused_before_a_repeated_attribute_header() -> None:
    head = b"POST / HTTP/1.1\r\nce-id: 1\r\nce-id: 1\r\n"
    reader = read(head + b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1))
    assert reader.refusal is not None and reader.refusal.status == 413
    reader = read(head + b"Content-Length: 2\r\n\r\n{}")
    assert reader.refusal is not None and reader.refusal.status == 400
    assert reader.refusal.attribute == "id"


def test_repeated_attribute_headers_elsewhere_than_post_slash_are_not_the_readers_concern() -> None:
    reader = read(b"DELETE / HTTP/1.1\r\nce-id: 1\r\nce-id: 1\r\nContent-Length: 0\r\n\r\n")
    assert reader.refusal is None and reader.complete
