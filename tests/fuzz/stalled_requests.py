"""Requests that stall: part of a request, then nothing (or a byte now and then).

wire/limits.py: "A client has this long to send a whole request once it started one
(REQUEST_READ_SECONDS) ... then it gets a 408 and the connection is closed." Every edge
enforces it. Each case here starts a request and does not finish it; the server must answer
the complete requests before it, then 408 (a JSON error) and close, or just close, within
REQUEST_READ_SECONDS and some slack. A trickle of one byte a second must not keep it open.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fuzz.invariants import MAX_ERROR_BODY, error_document, show_answer
from tests.support.raw_http import Exchange, Plan, Write
from wire.limits import REQUEST_READ_SECONDS

#: How much later than REQUEST_READ_SECONDS a 408 or close may come (the broker sweeps once
#: a second; the machine is busy).
SLACK_SECONDS = 3.0
DEADLINE_SECONDS = REQUEST_READ_SECONDS + SLACK_SECONDS


@dataclass(frozen=True)
class Stall:
    """A stalled request on its own connection, after `complete` whole requests."""

    name: str
    plan: Plan
    complete: int


def stalls(path: bytes, complete_request: bytes) -> list[Stall]:
    """The stalled requests to try against a target; `complete_request` is answered normally."""
    head = b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    cases = {
        "partial request line": b"POST " + path + b" HT",
        "request line only": b"POST " + path + b" HTTP/1.1\r\n",
        "partial head": head + b"ce-id: stalled\r\nce-so",
        "whole head, part of the body": head + b"Content-Length: 100\r\n\r\n" + b'{"a": 1',
        "chunked, in the middle of a chunk": head
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"10\r\nabc",
        "100-continue, no body": head + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    }
    found = [
        Stall(name, Plan((Write(data),), expected_answers=1, wait_for_close=True), 0)
        for name, data in cases.items()
    ]
    found.append(
        Stall(
            "a whole request, then part of another",
            Plan(
                (Write(complete_request + head),),
                expected_answers=2,
                wait_for_close=True,
            ),
            1,
        )
    )
    trickle = [Write(head)] + [
        Write(b"X-Slow-%d: y\r\n" % index, pause=1.0) for index in range(int(DEADLINE_SECONDS) + 3)
    ]
    found.append(
        Stall(
            "a header line a second (slowloris)",
            Plan(tuple(trickle), expected_answers=1, wait_for_close=True),
            0,
        )
    )
    return found


def stall_problem(stall: Stall, exchange: Exchange) -> str | None:
    """What is wrong with how the server treated a stalled request, or None."""
    took = exchange.ended - exchange.started
    answers = exchange.answers
    statuses = [answer.status for answer in answers]
    if exchange.timed_out or not exchange.closed:
        return (
            f"{stall.name}: still open after {took:.1f}s, answers {statuses}"
            f" (wanted 408 or a close within {DEADLINE_SECONDS:g}s)"
        )
    if took > DEADLINE_SECONDS:
        return f"{stall.name}: the 408 or close took {took:.1f}s"
    if len(answers) < stall.complete:
        return f"{stall.name}: the complete request before the stalled one got no answer"
    early = answers[: stall.complete]
    if any(answer.status >= 300 for answer in early):
        return f"{stall.name}: the complete request was refused: {show_answer(early[0])}"
    late = answers[stall.complete :]
    if len(late) > 1:
        return f"{stall.name}: more than one answer to the stalled request: {statuses}"
    if late:
        refusal = late[0]
        if refusal.status != 408:
            return f"{stall.name}: answered {show_answer(refusal)}, not 408"
        document = error_document(refusal)
        if refusal.media_type != "application/json" or document is None:
            return f"{stall.name}: the 408 is not a JSON error: {show_answer(refusal)}"
        if len(refusal.body) >= MAX_ERROR_BODY:
            return f"{stall.name}: the 408's body is 1 KiB or more"
    return None
