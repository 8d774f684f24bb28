"""What every answer of a fuzzed target must satisfy; each rule is an assertion of its own.

Hypothesis tells failures apart by where they are raised, so every rule raises from its own
line: one run can report several defects instead of the first one shadowing the rest.

The rules common to every target (HTTP/1.1, RFC 9110/9112, and wire/limits.py):

- never a 5xx, never an HTML body; every error a short JSON object with an `error` string;
- no hang: every exchange answered (or closed) without `answer_seconds` of silence;
- answers in request order, one per request, until the connection is closed; no more answers
  than requests (but one refusal of junk left after a short body);
- an interim `100 Continue` only for a request that asked for it;
- a request over a limit is refused with the limit's status (414 target, 431 head, 413 body),
  one within every limit never is;
- a framing RFC 9112 calls invalid is refused with 400 and the connection closed; a request
  after which the server must close (HTTP/1.0, `Connection: close`, Transfer-Encoding with
  Content-Length) is followed by a close.

Each target adds its own expectations (`Expectation`): the statuses its documentation allows
for this request, and whether a status must be exactly one thing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fuzz.http_requests import REFUSED_FRAMINGS, Framing, RawRequest
from tests.support.raw_http import Answer, Exchange

MAX_ERROR_BODY = 1024
MAX_SUCCESS_BODY = 64 * 1024


@dataclass(frozen=True)
class Expectation:
    """What a target's documentation allows as the answer to one request."""

    statuses: frozenset[int]
    must_accept: bool = False  # a plainly valid request: the one right answer is `statuses`
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Violation(AssertionError):
    """An invariant failed; the message carries the requests and answers."""


def show_answer(answer: Answer, body_limit: int = 300) -> str:
    headers = ", ".join(f"{n.decode('latin-1')}: {v[:80]!r}" for n, v in answer.headers)
    body = answer.body[:body_limit]
    more = f" ... ({len(answer.body)} bytes)" if len(answer.body) > body_limit else ""
    interim = f" after {answer.interim}" if answer.interim else ""
    return f"{answer.status}{interim} [{headers}] {body!r}{more}"


def show_exchange(group: Sequence[RawRequest], exchange: Exchange) -> str:
    lines = [f"connection: {exchange.describe()}"]
    for index, request in enumerate(group):
        lines.append(f"  request {index}: {request.describe()}")
        if index < len(exchange.answers):
            lines.append(f"  answer {index}: {show_answer(exchange.answers[index])}")
    for index in range(len(group), len(exchange.answers)):
        lines.append(f"  extra answer {index}: {show_answer(exchange.answers[index])}")
    return "\n".join(lines)


class Context:
    """The requests and answers of a connection, put into words only when a check fails."""

    def __init__(self, group: Sequence[RawRequest], exchange: Exchange) -> None:
        self._group = group
        self._exchange = exchange

    def __str__(self) -> str:
        return show_exchange(self._group, self._exchange)


def error_document(answer: Answer) -> dict[str, Any] | None:
    """The JSON object of an error answer, or None if it is not one."""
    try:
        document = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


# -- exchanges ----------------------------------------------------------------------------------


def check_exchange(group: Sequence[RawRequest], exchange: Exchange) -> None:
    """The rules of a whole connection: no hang, strict HTTP, order and count, closes."""
    context = Context(group, exchange)
    assert not exchange.timed_out, f"hang: no answer and no close in time\n{context}"
    assert exchange.protocol_error is None, f"malformed HTTP answer\n{context}"
    assert not exchange.trailing_interim or exchange.closed, (
        f"an interim answer and then nothing\n{context}"
    )
    allowed_extra = 1 if group[-1].framing is Framing.SHORT_LENGTH else 0
    assert len(exchange.answers) <= len(group) + allowed_extra, (
        f"more answers than requests\n{context}"
    )
    for extra in exchange.answers[len(group) :]:
        assert 400 <= extra.status < 500, f"junk after a short body was not refused\n{context}"
    if len(exchange.answers) < len(group):
        assert exchange.closed, f"requests left unanswered on an open connection\n{context}"
    last = group[-1]
    earlier_closed = any(answer.closes() for answer in exchange.answers)
    if (
        last.framing in REFUSED_FRAMINGS
        and len(exchange.answers) == len(group) - 1
        and not earlier_closed
    ):
        assert exchange.reset, f"closed without the 400 RFC 9112 demands\n{context}"
    if len(exchange.answers) >= len(group) and last.must_close_after:
        assert not exchange.left_open, (
            f"the connection stayed open after a request HTTP says ends it\n{context}"
        )


# -- answers ------------------------------------------------------------------------------------


def check_answer(
    request: RawRequest, answer: Answer, expectation: Expectation, context: Context
) -> None:
    """Every rule one answer must keep, given what its target allows for its request."""
    _check_not_server_error(answer, context)
    _check_not_html(answer, context)
    if answer.status >= 400 and not request.is_head:  # an answer to HEAD has no body
        _check_error_body(answer, context)
    else:
        assert len(answer.body) <= MAX_SUCCESS_BODY, f"an answer over 64 KiB\n{context}"
    _check_interim(request, answer, context)
    _check_limits(request, answer, context)
    _check_framing(request, answer, context)
    if expectation.must_accept:
        assert answer.status in expectation.statuses, (
            f"a plainly valid request was not accepted ({expectation.notes})\n{context}"
        )
    assert answer.status in allowed_statuses(request, expectation), (
        f"status {answer.status} is not one the target documents here "
        f"(allowed {sorted(allowed_statuses(request, expectation))}; {expectation.notes})\n"
        f"{context}"
    )


def allowed_statuses(request: RawRequest, expectation: Expectation) -> set[int]:
    """The target's statuses, widened by what HTTP allows a server for an irregular request."""
    allowed = set(expectation.statuses)
    if not request.valid_version:
        allowed |= {400, 505}  # HTTP/1.2 may be served as 1.1 (RFC 9112 2.3); the rest refused
    if request.framing in REFUSED_FRAMINGS:
        return {400, 413} | _over_limit_statuses(request)
    if (
        request.framing is Framing.LENGTH_AND_CHUNKED
        or request.odd_head
        or not request.names_are_tokens
    ):
        allowed |= {400}
    if request.version == b"HTTP/1.0" and request.framing is Framing.CHUNKED:
        allowed |= {400, 411}
    if _limits_apply(request):
        over = _over_limit_statuses(request)
        if over:
            return over
    else:
        allowed |= _over_limit_statuses(request)
    return allowed


#: Methods every server knows; one it does not may be refused before its target is read.
KNOWN_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")


def _limits_apply(request: RawRequest) -> bool:
    """Whether the request is regular enough that its size alone decides a size refusal."""
    return request.exact and request.valid_version and request.method in KNOWN_METHODS


def _over_limit_statuses(request: RawRequest) -> set[int]:
    statuses = set()
    if request.over_url_limit:
        statuses.add(414)
    if request.over_header_limit:
        statuses.add(431)
    if request.over_body_limit:
        statuses.add(413)
    return statuses


def _check_not_server_error(answer: Answer, context: Context) -> None:
    # One line per kind of 5xx: a 505 for an odd version must not hide a 500 from a crash.
    if answer.status == 500:
        raise Violation(f"500: the target failed on this request\n{context}")
    if answer.status == 503:
        raise Violation(f"503: the target reported trouble of its own\n{context}")
    if answer.status == 505:
        raise Violation(f"505 (a 5xx: Knative would retry it)\n{context}")
    assert answer.status < 500, f"a 5xx answer\n{context}"


def _check_not_html(answer: Answer, context: Context) -> None:
    assert "html" not in answer.media_type, f"an HTML answer\n{context}"
    assert not answer.body.lstrip().startswith(b"<"), (
        f"an answer body that looks like HTML\n{context}"
    )


def _check_error_body(answer: Answer, context: Context) -> None:
    assert answer.media_type == "application/json", f"an error that is not JSON\n{context}"
    assert len(answer.body) < MAX_ERROR_BODY, f"an error body of 1 KiB or more\n{context}"
    document = error_document(answer)
    assert document is not None and isinstance(document.get("error"), str), (
        f'an error body without an "error" string\n{context}'
    )


def _check_interim(request: RawRequest, answer: Answer, context: Context) -> None:
    assert set(answer.interim) <= {100}, f"an interim answer other than 100\n{context}"
    assert not answer.interim or request.wants_continue, (
        f"100 Continue for a request that did not ask for it (answers out of order)\n{context}"
    )
    assert len(answer.interim) <= 1, f"100 Continue twice for one request\n{context}"


def _check_limits(request: RawRequest, answer: Answer, context: Context) -> None:
    if not _limits_apply(request):
        return
    over = _over_limit_statuses(request)
    if over:
        assert answer.status in over, (
            f"a request over a limit was not refused with {sorted(over)}\n{context}"
        )
    else:
        assert answer.status not in (413, 414, 431), (
            f"a request within every limit was refused as too large\n{context}"
        )


def _check_framing(request: RawRequest, answer: Answer, context: Context) -> None:
    if request.framing in REFUSED_FRAMINGS:
        assert answer.status in {400, 413} | _over_limit_statuses(request), (
            f"a request whose framing RFC 9112 calls invalid was not refused\n{context}"
        )
