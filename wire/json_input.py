"""Reading JSON a client sent: UTF-8 only, nesting bounded, no lone surrogates, no NaN.

Python's json module accepts documents that are not JSON (`NaN`, `Infinity`), recurses until it
hits the interpreter's limit (a RecursionError, not a ValueError), and decodes `"\\ud800"` into
a string that cannot be written back as UTF-8 or stored. Every edge reads client JSON here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from wire.limits import MAX_JSON_DEPTH
from wire.strings import quote, string_problem

# What is left of a document once its strings and scalars are gone: the brackets alone.
_NOT_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[^\[\]{}"]+')


class JsonInputError(ValueError):
    """A document that is not acceptable JSON; the message says why, without echoing it.

    `path` is where in the document the fault is, when it is known: the keys and indexes
    leading to it (a lone surrogate's string).
    """

    def __init__(
        self,
        message: str,
        path: tuple[str | int, ...] = (),
        repeated: bool = False,
        problem: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.repeated = repeated  # the fault is a member name given twice
        self.problem = problem  # a string's fault, as strings.string_problem says it


def load_json(
    text: bytes | str,
    *,
    what: str = "the body",
    max_depth: int = MAX_JSON_DEPTH,
    unique_members: bool = False,
) -> Any:
    """The value of a JSON document from a client; JsonInputError names what is wrong.

    With `unique_members`, an object at the top (or, in a top-level array, each object in it)
    may not repeat a member name: RFC 8259 leaves what that means to each reader, and a
    CloudEvent whose `id` is given twice has no one `id`.
    """
    if isinstance(text, bytes):
        try:
            # RFC 8259 8.1: a parser may ignore a byte order mark; this one does.
            text = text.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonInputError(f"{what} is not UTF-8 (byte {error.start})") from None
    # Counting brackets is cheap; only a document with many of them can nest too deeply.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonInputError(f"{what} nests arrays and objects deeper than {max_depth} levels")
    repeated: dict[int, str] = {}
    hook = None
    if unique_members:

        def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            found = dict(pairs)
            if len(found) != len(pairs):
                repeated[id(found)] = _first_repeated(pairs)
            return found

    try:
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=hook)
    except JsonInputError as error:
        raise JsonInputError(f"{what} is not valid JSON: {error}") from None
    except (ValueError, RecursionError) as error:
        raise JsonInputError(f"{what} is not valid JSON: {_short(error)}") from None
    if repeated:
        tops = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in tops:
            name = repeated.get(id(item)) if isinstance(item, dict) else None
            if name is not None:
                path: tuple[str | int, ...] = (name,) if index is None else (index, name)
                message = f"member {quote(name)} appears more than once"
                raise JsonInputError(message, path, repeated=True)
    if "\\u" in text:
        _check_escaped_strings(value, what)
    return value


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (0 for a scalar); a text that is not
    JSON gets some number, and the parser then says what is wrong with it."""
    deepest = depth = 0
    for bracket in _NOT_BRACKETS.sub("", text):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "]}":
            depth -= 1
    return deepest


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no member is repeated")


def _no_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON value")


def _short(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return str(error)[:100]


def _check_escaped_strings(value: Any, what: str) -> None:
    """Refuse lone surrogates, which only a \\u escape can produce."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return
    for path, text in _strings(value):
        problem = string_problem(text)
        if problem is not None and "surrogate" in problem:
            raise JsonInputError(f"a string in {what} {problem}", path, problem=problem)


def _strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string of a JSON value (keys too), with the path of the value it belongs to."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield (*path, key), key
                stack.append(((*path, key), inner))
        elif isinstance(item, list):
            stack.extend(((*path, index), inner) for index, inner in enumerate(item))
