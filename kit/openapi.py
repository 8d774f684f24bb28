"""Each service's OpenAPI 3.1 document, `GET /openapi.json`, built from its routes and schemas.

Nothing is written twice: paths, methods and path parameters come from the Flask app's
`url_map` (a `<int:id>` is an integer, a `<sku>` a string the converter's regex matches), request
bodies are the routes' `BodySchema.schema` as they are, and a service adds what the code cannot
tell: a summary and the responses of each route. It does so next to the routes, on the Blueprint
it registers:

    describe(routes, {
        ("POST", "/orders"): Operation(
            "Place an order",
            request=NEW_ORDER,
            responses={201: Reply(ORDER_VIEW, "the pending order", headers=LOCATION)},
        ),
        ("GET", "/orders/<order_id>"): Operation(
            "One order", responses={200: Reply(ORDER_VIEW), 404: ERROR}
        ),
    })

Keys are (method, rule) exactly as in `url_map` (after any `url_prefix`). Responses the kit
answers by itself are added: 400, 413 and 415 for a route with a request body (`parse()` and
MAX_CONTENT_LENGTH), and 404 for a route with path parameters (a value the converter does not
match finds no route), and 503 for every route of a service (kit/unavailable.py: the database
is busy or unreachable). A decorator of a view adds what it answers by itself with
`amend(view, Amendment(...))`: kit/idempotent_routes.py documents the `Idempotency-Key` request
header, its 409 and 422, and the `Idempotent-Replayed` header of a replay this way. The kit's
own routes (`POST /` for CloudEvents, `/healthz`, `/readyz`,
`/metrics` and `/openapi.json`) are described here, and every error body is the one `Error`
component (`{"error": ..., "field": ..., "limit": ...}`, see kit/errors.py).

Drift fails loudly: `build_document` raises `ApiDescriptionError` for a described route that is
not in `url_map`, and for a route in `url_map` that has no description, Flask's `static` rules
aside. Which routes must be described: all of them once a Blueprint is described with
`prefixes=None` (the default; order, customer and inventory), else those under the `prefixes`
its description names. A service that describes nothing (payment, notification, deadletter and
viewer so far) gets a document of the kit's routes only; its own routes are left out of it, not
checked, until it describes them.

The document is built once, on the first `GET /openapi.json` (Blueprints are registered after
the Service is created), and kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from werkzeug.routing import BaseConverter, FloatConverter, IntegerConverter, Rule

from kit.api import BodySchema, json_response
from wire.http_binding import STRUCTURED_JSON

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
#: Methods Flask adds to every rule by itself; they are not documented.
_AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
_ATTRIBUTE = "shop_api"
_CACHE = "shop.openapi"
_PLACEHOLDER = re.compile(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>")

#: The one error body of every JSON API (kit.errors.RequestError.to_json) and of the
#: kit's HTTP errors (404, 405, 413).
ERROR_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, for a person"},
        "field": {
            "type": "string",
            "description": "the JSON path of the culprit in the body (for a missing or unknown "
            "member, its name)",
        },
        "limit": {"description": "the limit the culprit exceeds, when it exceeds one"},
    },
    "additionalProperties": False,
}
#: The error body of `POST /` (wire.spec.InvalidEvent.to_json).
EVENT_ERROR_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "attribute": {"type": "string", "description": "the CloudEvents attribute at fault"},
    },
    "additionalProperties": False,
}


class ApiDescriptionError(ValueError):
    """The description of a service's API and its routes disagree."""


@dataclass(frozen=True)
class Reply:
    """One response of an operation: its body's JSON Schema (None: no body) and media type."""

    schema: Mapping[str, Any] | None = None
    description: str | None = None
    media_type: str = JSON
    #: Response headers: name -> description.
    headers: Mapping[str, str] = field(default_factory=dict)


#: A JSON error body (the `Error` component).
ERROR = Reply({"$ref": "#/components/schemas/Error"})
#: The Location header of a 201.
LOCATION = {"Location": "the path of what was created"}


@dataclass(frozen=True)
class Operation:
    """What the code of one route (method and rule) cannot tell by itself."""

    summary: str
    responses: Mapping[int, Reply]
    #: The route's request body; its `.schema` is the document's schema, unchanged.
    request: BodySchema | None = None
    #: Path parameters whose schema is narrower than the converter's (name -> JSON Schema).
    path: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class Api:
    """A Blueprint's operations, and the path prefixes under which every route is described."""

    operations: Mapping[tuple[str, str], Operation]
    #: None: every route of the app must be described.
    prefixes: Sequence[str] | None = None


@dataclass(frozen=True)
class Amendment:
    """What a decorator of a route adds to the route's operation, whatever the route is."""

    #: Header (or query) parameters: OpenAPI Parameter Objects.
    parameters: Sequence[Mapping[str, Any]] = ()
    #: Responses the decorator answers itself; merged with the route's own of the same status.
    responses: Mapping[int, Reply] = field(default_factory=dict)
    #: Headers the decorator may add to every 2xx response: name -> description.
    success_headers: Mapping[str, str] = field(default_factory=dict)


_AMENDMENTS = "shop_api_amendments"
#: The kit's answer to a busy or unreachable database, on every route of a service.
UNAVAILABLE = Reply(
    {"$ref": "#/components/schemas/Error"},
    "the database is busy or unreachable: try again (after Retry-After seconds)",
    headers={"Retry-After": "seconds to wait before trying again"},
)


def amend(view: Callable[..., Any], amendment: Amendment) -> None:
    """Record on `view` (the decorated function Flask routes to) what its decorator adds."""
    setattr(view, _AMENDMENTS, (*getattr(view, _AMENDMENTS, ()), amendment))


def describe(
    blueprint: Blueprint,
    operations: Mapping[tuple[str, str], Operation],
    *,
    prefixes: Sequence[str] | None = None,
) -> Api:
    """Attach the description of its routes to `blueprint`; the kit finds it when registered."""
    api = Api({(method.upper(), rule): op for (method, rule), op in operations.items()}, prefixes)
    setattr(blueprint, _ATTRIBUTE, api)
    return api


def api_of(blueprint: object) -> Api | None:
    """The description attached to `blueprint` by `describe`, if any."""
    api = getattr(blueprint, _ATTRIBUTE, None)
    return api if isinstance(api, Api) else None


# -- the kit's own routes -----------------------------------------------------------------------

_TEXT = {"type": "string"}
KIT_OPERATIONS: Mapping[tuple[str, str], Operation] = {
    ("POST", "/"): Operation(
        "Receive CloudEvents (binary, structured or batched mode)",
        description="The service's sink. Binary mode: `ce-*` headers and the data as the body "
        "(any Content-Type, `application/json` shown); structured mode: "
        f"`{STRUCTURED_JSON}`. A 200 carries the reply event in binary mode.",
        responses={
            200: Reply(None, "handled; the reply event in binary mode"),
            202: Reply(None, "handled; nothing to reply"),
            400: Reply({"$ref": "#/components/schemas/EventError"}, "not a valid CloudEvent"),
            413: Reply({"$ref": "#/components/schemas/EventError"}),
            415: Reply({"$ref": "#/components/schemas/EventError"}, "an event format not JSON"),
            503: Reply(ERROR.schema, "try again later (Retry-After when known)"),
        },
    ),
    ("GET", "/healthz"): Operation(
        "Liveness",
        responses={
            200: Reply(
                {
                    "type": "object",
                    "required": ["status", "service"],
                    "properties": {"status": {"const": "ok"}, "service": _TEXT},
                }
            )
        },
    ),
    ("GET", "/readyz"): Operation(
        "Readiness: the database answers",
        responses={
            200: Reply(
                {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ready"}},
                }
            ),
            503: Reply(
                {
                    "type": "object",
                    "required": ["status", "error"],
                    "properties": {"status": {"const": "not ready"}, "error": _TEXT},
                }
            ),
        },
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics",
        responses={200: Reply({"type": "string"}, "the text exposition format", "text/plain")},
    ),
    ("GET", "/openapi.json"): Operation(
        "This document",
        responses={200: Reply({"type": "object"}, "the OpenAPI 3.1 document")},
    ),
}
_EVENT_BODY = {
    "required": True,
    "content": {STRUCTURED_JSON: {"schema": {"type": "object"}}, JSON: {"schema": {}}},
}


# -- building the document ----------------------------------------------------------------------


def serve_openapi() -> Response:
    """`GET /openapi.json`: the app's document, built on the first request and kept."""
    document = current_app.extensions.get(_CACHE)
    if document is None:
        service = current_app.extensions.get("shop.kit")
        title = str(getattr(service, "name", current_app.name))
        document = build_document(current_app, title=title)
        current_app.extensions[_CACHE] = document
    return json_response(200, document)


def build_document(app: Flask, *, title: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`; ApiDescriptionError if routes and descriptions differ."""
    described: dict[tuple[str, str], tuple[Operation, str]] = {
        key: (operation, "kit") for key, operation in KIT_OPERATIONS.items()
    }
    prefixes: list[str] | None = []
    for name, blueprint in app.blueprints.items():
        api = api_of(blueprint)
        if api is None:
            continue
        for key, operation in api.operations.items():
            if key in described:
                raise ApiDescriptionError(f"{key[0]} {key[1]} is described twice ({name})")
            described[key] = (operation, name)
        if api.prefixes is None:
            prefixes = None
        elif prefixes is not None:
            prefixes.extend(api.prefixes)

    paths: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    undescribed = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted((rule.methods or set()) - _AUTOMATIC_METHODS):
            key = (method, rule.rule)
            if key not in described:
                if _must_be_described(rule.rule, prefixes):
                    undescribed.append(f"{method} {rule.rule}")
                continue
            seen.add(key)
            operation, tag = described[key]
            amendments = getattr(app.view_functions.get(rule.endpoint), _AMENDMENTS, ())
            path = _path_template(rule.rule)
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule, method, operation, tag, amendments
            )
    if undescribed:
        raise ApiDescriptionError(f"routes without a description: {', '.join(undescribed)}")
    missing = sorted(f"{method} {rule}" for method, rule in described.keys() - seen)
    if missing:
        raise ApiDescriptionError(f"described routes that are not in url_map: {', '.join(missing)}")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": _version(),
            "description": f"The {title} service of the shop (docs/services.md).",
        },
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA, "EventError": EVENT_ERROR_SCHEMA}},
    }


def _must_be_described(rule: str, prefixes: Sequence[str] | None) -> bool:
    if prefixes is None:
        return True
    return any(rule == prefix or rule.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def _operation(
    rule: Rule,
    method: str,
    operation: Operation,
    tag: str,
    amendments: Sequence[Amendment] = (),
) -> dict[str, Any]:
    methods = (rule.methods or set()) - _AUTOMATIC_METHODS
    document: dict[str, Any] = {
        "operationId": rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}",
        "summary": operation.summary,
        "tags": [tag],
    }
    if operation.description:
        document["description"] = operation.description
    path_parameters = _path_parameters(rule, operation)
    parameters = [*path_parameters, *(dict(p) for a in amendments for p in a.parameters)]
    if parameters:
        document["parameters"] = parameters
    responses = dict(operation.responses)
    for amendment in amendments:
        responses = _amended(responses, amendment)
    if operation.request is not None:
        document["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": operation.request.schema}},
        }
        for status in (400, 413, 415):
            responses.setdefault(status, ERROR)
    elif (method, rule.rule) == ("POST", "/"):
        document["requestBody"] = _EVENT_BODY
    if path_parameters:
        responses.setdefault(404, Reply(ERROR.schema, "no such resource, or no such route"))
    if tag != "kit":
        responses.setdefault(503, UNAVAILABLE)
    document["responses"] = {
        str(status): _response(status, reply) for status, reply in sorted(responses.items())
    }
    return document


def _amended(responses: Mapping[int, Reply], amendment: Amendment) -> dict[int, Reply]:
    """The route's responses with the decorator's: descriptions joined where both answer."""
    merged = dict(responses)
    for status, reply in amendment.responses.items():
        own = merged.get(status)
        if own is None:
            merged[status] = reply
            continue
        descriptions = [d for d in (own.description, reply.description) if d]
        merged[status] = Reply(
            own.schema,
            "; or ".join(descriptions) or None,
            own.media_type,
            {**own.headers, **reply.headers},
        )
    for status, reply in merged.items():
        if 200 <= status < 300 and amendment.success_headers:
            merged[status] = Reply(
                reply.schema,
                reply.description,
                reply.media_type,
                {**reply.headers, **amendment.success_headers},
            )
    return merged


def _path_parameters(rule: Rule, operation: Operation) -> list[dict[str, Any]]:
    converters: Mapping[str, BaseConverter] = rule._converters
    unknown = set(operation.path) - set(converters)
    if unknown:
        raise ApiDescriptionError(f"{rule.rule} has no path parameter {', '.join(sorted(unknown))}")
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(operation.path.get(name) or _converter_schema(converter)),
        }
        for name, converter in converters.items()
    ]


def _converter_schema(converter: BaseConverter) -> dict[str, Any]:
    """What a Werkzeug converter matches, as a JSON Schema."""
    if isinstance(converter, IntegerConverter | FloatConverter):
        schema: dict[str, Any] = {
            "type": "integer" if isinstance(converter, IntegerConverter) else "number"
        }
        low = converter.min if converter.min is not None else None if converter.signed else 0
        if low is not None:
            schema["minimum"] = low
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    return {"type": "string", "pattern": f"^(?:{converter.regex})$"}


def _response(status: int, reply: Reply) -> dict[str, Any]:
    document: dict[str, Any] = {"description": reply.description or HTTPStatus(status).phrase}
    if reply.headers:
        document["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers.items()
        }
    if reply.schema is not None:
        document["content"] = {reply.media_type: {"schema": reply.schema}}
    return document


def _path_template(rule: str) -> str:
    """`/orders/<order_id>` as OpenAPI writes it: `/orders/{order_id}`."""
    return _PLACEHOLDER.sub(r"{\1}", rule)


def _version() -> str:
    try:
        return version("knative-shop")
    except PackageNotFoundError:
        return "0"
