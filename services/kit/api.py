"""Helpers for a service's own HTTP API routes (not CloudEvents): JSON in, JSON errors out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from services.kit.errors import RequestError


class BodySchema:
    """A JSON Schema for a request body, checked once per request."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self._validator = Draft202012Validator(schema)

    def parse(self) -> Any:
        """The request's JSON body, or a RequestError (400/415) naming what is wrong."""
        if not request.is_json:
            raise RequestError(415, "the body must be JSON (Content-Type: application/json)")
        body = request.get_json(silent=True)
        if body is None:
            raise RequestError(400, "the body is not valid JSON")
        error = best_match(self._validator.iter_errors(body))
        if error is not None:
            field = "/".join(str(part) for part in error.absolute_path) or None
            raise RequestError(400, error.message, field=field)
        return body


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with the given status."""
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)
