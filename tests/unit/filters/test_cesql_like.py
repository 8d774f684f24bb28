"""LIKE patterns: wildcards, escapes, Unicode, and agreement with a reference matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.knative.filters.cesql import parse
from wire.knative.filters.cesql.like import compile_like


@pytest.mark.parametrize(
    ("text", "pattern", "matches"),
    [
        ("abc", "abc", True),
        ("ABC", "abc", False),
        ("abc", "%", True),
        ("", "%", True),
        ("", "_", False),
        ("", "", True),
        ("a", "", False),
        ("abc", "a%", True),
        ("abc", "%c", True),
        ("abc", "%b%", True),
        ("abc", "a%c", True),
        ("ac", "a%c", True),
        ("a", "a%a", False),
        ("aa", "a%a", True),
        ("abcabc", "%b_a%", True),
        ("aba", "%a%b%", True),
        ("xaxbxa", "%a%b%a", True),
        ("abcab", "a%b_a%c", False),
        ("a%", r"a\%", True),
        ("ab", r"a\%", False),
        ("a_", r"a\_", True),
        ("ab", r"a\_", False),
        ("a\\b", r"a\b", True),
        ("a\\%", r"a\\%", True),
        ("a\nb", "a_b", True),
        ("a\nb", "a%", True),
        ("é", "_", True),
        ("日本語", "日_語", True),
        ("👍x", "_x", True),
        ("a.c", "a.c", True),
        ("abc", "a.c", False),
        ("a(b)*c", "a(b)*_", True),
    ],
)
def test_like(text: str, pattern: str, matches: bool) -> None:
    assert compile_like(pattern)(text) is matches
    expression = parse(f"x LIKE '{_quote(pattern)}'")
    assert expression.evaluate({"x": text}).value is matches
    assert parse(f"x NOT LIKE '{_quote(pattern)}'").evaluate({"x": text}).value is not matches


def _quote(pattern: str) -> str:
    # In a CESQL string literal only \' is an escape; every other backslash stays as written.
    return pattern.replace("'", "\\'")


def reference_match(text: str, pattern: str) -> bool:
    """LIKE by the textbook wildcard table, written independently of the segment search."""
    tokens: list[str] = []  # one character each; ANY for '%', ONE for '_'
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            tokens.append(pattern[i + 1])
            i += 2
            continue
        tokens.append({"%": ANY, "_": ONE}.get(pattern[i], pattern[i]))
        i += 1
    # row[j]: the text read so far matches the first j tokens
    row = [True] + [False] * len(tokens)
    for j, token in enumerate(tokens):
        row[j + 1] = row[j] and token == ANY
    for char in text:
        previous, row = row, [False] * (len(tokens) + 1)
        for j, token in enumerate(tokens):
            if token == ANY:
                row[j + 1] = row[j] or previous[j + 1]
            else:
                row[j + 1] = previous[j] and token in (ONE, char)
    return row[-1]


ANY, ONE = "<any>", "<one>"


@settings(max_examples=500)
@given(st.text("ab%_\\", max_size=8), st.text("ab%_\\", max_size=10))
def test_like_agrees_with_a_reference_matcher(pattern: str, text: str) -> None:
    assert compile_like(pattern)(text) is reference_match(text, pattern)


def test_a_pattern_with_many_wildcards_stays_fast() -> None:
    # A backtracking regex would take exponential time on this; segments are searched once each.
    matcher = compile_like("%a%a%a%a%a%a%a%a%a%a%b")
    assert matcher("a" * 5000) is False
