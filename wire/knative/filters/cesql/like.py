"""LIKE patterns compiled to string matchers (spec section 3.4.3).

`%` matches any run of characters, `_` exactly one; `\\%` and `\\_` match the character itself,
and a backslash before anything else is an ordinary character. Matching is by Unicode code
point and case-sensitive.

A pattern is split at its unescaped `%` into fixed-length segments: the first must match at
the start, the last at the end, and each one between at its leftmost place after the previous.
That greedy search is exact for `%`-only wildcards and never backtracks, so a hostile pattern
cannot make matching slow.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Matcher = Callable[[str], bool]
# A segment is a literal string, or a compiled regex when it holds `_` wildcards; with its width.
Segment = tuple[str | re.Pattern[str], int]


def compile_like(pattern: str) -> Matcher:
    """A function telling whether a string matches the LIKE pattern."""
    segments = _segments(pattern)
    if len(segments) == 1:
        return _whole(segments[0][0])
    first, *middle, last = segments
    if not middle and isinstance(first[0], str) and isinstance(last[0], str):
        return _prefix_suffix(first[0], last[0])
    return _general(first, middle, last)


def _segments(pattern: str) -> list[Segment]:
    """The pattern cut at each unescaped '%', each piece a literal or a `_` regex."""
    segments: list[Segment] = []
    literal: list[str] = []
    regex: list[str] = []
    wildcard = False
    i = 0
    while i <= len(pattern):
        char = pattern[i] if i < len(pattern) else "%"
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            literal.append(pattern[i + 1])
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "%":
            piece = re.compile("".join(regex), re.DOTALL) if wildcard else "".join(literal)
            segments.append((piece, len(regex)))
            literal, regex, wildcard = [], [], False
        elif char == "_":
            wildcard = True
            regex.append(".")
        else:
            literal.append(char)
            regex.append(re.escape(char))
        i += 1
    return segments


def _whole(piece: str | re.Pattern[str]) -> Matcher:
    if isinstance(piece, str):
        return piece.__eq__
    return lambda text: piece.fullmatch(text) is not None


def _prefix_suffix(first: str, last: str) -> Matcher:
    if not last:
        return lambda text: text.startswith(first)
    if not first:
        return lambda text: text.endswith(last)
    least = len(first) + len(last)
    return lambda text: len(text) >= least and text.startswith(first) and text.endswith(last)


def _general(first: Segment, middle: list[Segment], last: Segment) -> Matcher:
    (head, head_width), (tail, tail_width) = first, last

    def matches(text: str) -> bool:
        end = len(text) - tail_width
        if end < head_width or not _at(head, text, 0) or not _at(tail, text, end):
            return False
        start = head_width
        for piece, width in middle:
            found = _find(piece, text, start, end)
            if found < 0:
                return False
            start = found + width
        return True

    return matches


def _at(piece: str | re.Pattern[str], text: str, start: int) -> bool:
    if isinstance(piece, str):
        return text.startswith(piece, start)
    return piece.match(text, start) is not None


def _find(piece: str | re.Pattern[str], text: str, start: int, end: int) -> int:
    if isinstance(piece, str):
        return text.find(piece, start, end)
    found = piece.search(text, start, end)
    return -1 if found is None else found.start()
