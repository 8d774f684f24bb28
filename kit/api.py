"""Helpers for a service's own HTTP API routes (not CloudEvents): JSON in, JSON errors out.

Every string a JSON API takes obeys the CloudEvents String rule (it may end up in an event):
no control characters, noncharacters or lone surrogates, in keys and values alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import Response, request

from kit.errors import RequestError
from kit.json_schema import Schema, field_name
from wire.json_input import JsonInputError, load_json
from wire.strings import string_problem


class BodySchema:
    """A JSON Schema for a request body, checked once per request.

    `free_text` names top-level fields whose strings may hold line breaks and tabs (a person's
    typed text, not an identifier); the String rule holds for every other string.
    """

    def __init__(self, schema: Mapping[str, Any], free_text: Iterable[str] = ()) -> None:
        self.schema = schema
        self._schema = Schema(schema, what="the body")
        self._free_text = frozenset(free_text)

    def parse(self) -> Any:
        """The request's JSON body, or a RequestError (400/415) naming what is wrong."""
        if not request.is_json:
            raise RequestError(415, "the body must be JSON (Content-Type: application/json)")
        try:
            body = load_json(request.get_data(cache=True))
        except JsonInputError as error:
            at = field_name(error.path)
            if at is None or error.problem is None:
                raise RequestError(400, str(error)) from None
            raise RequestError(400, f"a string in {at!r} {error.problem}", field=at) from None
        for field, text in _strings(body):
            if field is not None and field.split("/")[0] in self._free_text:
                continue
            problem = string_problem(text)
            if problem is not None:
                where = f"{field!r}" if field else "the body"
                raise RequestError(400, f"a string in {where} {problem}", field=field or None)
        found = self._schema.problem(body)
        if found is not None:
            raise RequestError(400, found.message, field=found.field, limit=found.limit)
        return body


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with the given status."""
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _strings(value: Any) -> Iterator[tuple[str | None, str]]:
    """Every string in a JSON value (keys too) with the field it sits at."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield field_name(where), item
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield field_name(where), key
                stack.append((inner, (*where, key)))
        elif isinstance(item, list):
            stack.extend((inner, (*where, index)) for index, inner in enumerate(item))
