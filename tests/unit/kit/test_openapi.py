"""`GET /openapi.json`: a valid OpenAPI 3.1 document that matches the routes (kit/openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Blueprint, Flask
from openapi_spec_validator import OpenAPIV31SpecValidator

from kit.api import BodySchema
from kit.errors import RequestError
from kit.idempotent_routes import OPENAPI
from kit.openapi import (
    ERROR_SCHEMA,
    ApiDescriptionError,
    Operation,
    Reply,
    api_of,
    build_document,
    describe,
)
from kit.request_keys import parse_key
from services.customer.app import NEW_USER
from services.customer.app import create_app as create_customer
from services.inventory.app import SET_STOCK
from services.inventory.app import create_app as create_inventory
from services.order.app import NEW_ORDER
from services.order.app import create_app as create_order
from services.order.app import routes as order_routes
from services.payment.app import PaymentConfig
from services.payment.app import create_app as create_payment
from tests.unit.services.running_service import kit_config

AppFactory = Callable[[str], Flask]
SERVICES: Mapping[str, AppFactory] = {
    "order": lambda url: create_order(kit_config("order", url)),
    "customer": lambda url: create_customer(kit_config("customer", url)),
    "inventory": lambda url: create_inventory(kit_config("inventory", url)),
}
#: The request body of each operation that takes JSON, as the route parses it.
REQUEST_BODIES: Mapping[str, Mapping[tuple[str, str], BodySchema]] = {
    "order": {("post", "/orders"): NEW_ORDER},
    "customer": {("post", "/users"): NEW_USER},
    "inventory": {("put", "/stock/{sku}"): SET_STOCK},
}
KIT_OPERATIONS = {
    ("post", "/"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
}
_PLACEHOLDER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def make_app(name: str, tmp_path: Path) -> Iterator[Flask]:
    app = SERVICES[name](f"sqlite:///{tmp_path}/{name}.db")
    yield app
    app.extensions["shop.kit"].close()


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    for app in make_app(request.param, tmp_path):
        yield request.param, app


def served_document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def route_operations(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of each rule in url_map; Flask's static files, HEAD, OPTIONS aside."""
    return {
        (method.lower(), _PLACEHOLDER.sub(r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.endswith("static")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def documented_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1(service: tuple[str, Flask]) -> None:
    name, app = service
    document = served_document(app)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == name
    OpenAPIV31SpecValidator(document).validate()


def test_every_route_is_documented_and_every_documented_route_exists(
    service: tuple[str, Flask],
) -> None:
    _, app = service
    routes = route_operations(app)
    documented = documented_operations(served_document(app))
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented operations that are not routes"
    assert documented >= KIT_OPERATIONS


def test_path_parameters_are_the_rules_arguments(service: tuple[str, Flask]) -> None:
    _, app = service
    for path, item in served_document(app)["paths"].items():
        names = re.findall(r"{([^}]+)}", path)
        for method, operation in item.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            assert [p["name"] for p in parameters] == names, (method, path)
            assert all(p["required"] for p in parameters)


def test_request_schemas_are_the_routes_body_schemas(service: tuple[str, Flask]) -> None:
    name, app = service
    document = served_document(app)
    with_json_bodies = {
        (method, path): operation["requestBody"]["content"]["application/json"]["schema"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation and (method, path) != ("post", "/")
    }
    expected = REQUEST_BODIES[name]
    assert set(with_json_bodies) == set(expected)
    for key, body in expected.items():
        assert with_json_bodies[key] == body.schema, key
        responses = document["paths"][key[1]][key[0]]["responses"]
        assert {"400", "413", "415"} <= set(responses), "parse() and the size limit answer these"


def test_the_error_component_is_what_request_errors_send(service: tuple[str, Flask]) -> None:
    _, app = service
    document = served_document(app)
    assert document["components"]["schemas"]["Error"] == ERROR_SCHEMA
    for error in (
        RequestError(404, "no order 'x'"),
        RequestError(400, "too long", field="lines/0/sku", limit=64),
    ):
        jsonschema.validate(error.to_json(), ERROR_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"field": "name"}, ERROR_SCHEMA)


KEYED = {"order": ("post", "/orders"), "customer": ("post", "/users")}


def test_keyed_operations_document_the_idempotency_key(service: tuple[str, Flask]) -> None:
    name, app = service
    document = served_document(app)
    keyed = {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert keyed == ({KEYED[name]} if name in KEYED else set())
    for method, path in keyed:
        operation = document["paths"][path][method]
        (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header["required"] is False
        responses = operation["responses"]
        assert {"400", "409", "422"} <= set(responses)
        assert "Retry-After" in responses["409"]["headers"]
        assert "Idempotent-Replayed" in responses["201"]["headers"]
        assert "Location" in responses["201"]["headers"], "the route's own header stays"
    if name == "customer":
        conflict = document["paths"]["/users"]["post"]["responses"]["409"]["description"]
        assert "email" in conflict and "Idempotency-Key" in conflict


@pytest.mark.parametrize(
    "raw",
    [
        '"k-1"',
        "k-1",
        "8e03978e-40d5-43e8-bc93-6894a57f9324",
        r'"say \"hi\""',
        '"' + "k" * 255 + '"',
        "k" * 255,
        '""',
        '"' + "k" * 256 + '"',
        "k" * 256,
        "a b",
        '"a", "b"',
        r'"bad \n"',
        '"caf\u00e9"',
    ],
)
def test_the_documented_key_pattern_is_what_the_kit_accepts(raw: str) -> None:
    try:
        parse_key(raw)
        accepted = True
    except RequestError:
        accepted = False
    documented = jsonschema.Draft202012Validator(OPENAPI.parameters[0]["schema"]).is_valid(raw)
    assert documented == accepted


def test_every_route_of_a_service_documents_503(service: tuple[str, Flask]) -> None:
    _, app = service
    never_busy = {("get", "/healthz"), ("get", "/metrics"), ("get", "/openapi.json")}
    for path, item in served_document(app)["paths"].items():
        for method, operation in item.items():
            if (method, path) not in never_busy:
                assert "503" in operation["responses"], (method, path)


def test_the_document_is_built_once(service: tuple[str, Flask]) -> None:
    _, app = service
    first = served_document(app)
    kept = app.extensions["shop.openapi"]
    assert served_document(app) == first
    assert app.extensions["shop.openapi"] is kept


# -- drift between routes and descriptions fails the build --------------------------------------


@pytest.fixture
def order_app(tmp_path: Path) -> Iterator[Flask]:
    yield from make_app("order", tmp_path)


@pytest.fixture
def payment_app(tmp_path: Path) -> Iterator[Flask]:
    """A kit app that describes none of its own routes (payment has none)."""
    app = create_payment(PaymentConfig(kit_config("payment", f"sqlite:///{tmp_path}/p.db")))
    yield app
    app.extensions["shop.kit"].close()


def test_a_route_without_a_description_fails(
    order_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_of(order_routes)
    assert api is not None
    dropped = {
        key: op for key, op in api.operations.items() if key != ("GET", "/orders/<order_id>")
    }
    monkeypatch.setattr(order_routes, "shop_api", replace(api, operations=dropped))
    with pytest.raises(ApiDescriptionError, match=r"without a description: GET /orders/<order_id>"):
        build_document(order_app, title="order")


def test_a_new_route_without_a_description_fails(order_app: Flask) -> None:
    order_app.add_url_rule("/orders/<order_id>/cancel", "cancel", lambda: "", methods=["POST"])
    with pytest.raises(ApiDescriptionError, match=r"POST /orders/<order_id>/cancel"):
        build_document(order_app, title="order")


def test_a_description_of_a_route_that_does_not_exist_fails(payment_app: Flask) -> None:
    gone = Blueprint("gone", __name__)
    gone.add_url_rule("/users/<user_id>", "show", lambda user_id: "")
    describe(
        gone,
        {
            ("GET", "/users/<user_id>"): Operation("a user", {200: Reply()}),
            ("DELETE", "/users/<user_id>"): Operation("no more", {204: Reply()}),
        },
    )
    payment_app.register_blueprint(gone)
    with pytest.raises(ApiDescriptionError, match=r"not in url_map: DELETE /users/<user_id>$"):
        build_document(payment_app, title="payment")


def test_only_routes_under_declared_prefixes_must_be_described(payment_app: Flask) -> None:
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/extra/things", "things", lambda: "")
    extra.add_url_rule("/elsewhere", "elsewhere", lambda: "")
    describe(extra, {}, prefixes=["/extra"])
    payment_app.register_blueprint(extra)
    with pytest.raises(ApiDescriptionError, match=r"without a description: GET /extra/things$"):
        build_document(payment_app, title="payment")


def test_converters_give_the_parameter_types(payment_app: Flask) -> None:
    app = payment_app
    typed = Blueprint("typed", __name__)
    typed.add_url_rule("/things/<int:thing_id>", "thing", lambda thing_id: "")
    describe(typed, {("GET", "/things/<int:thing_id>"): Operation("a thing", {200: Reply()})})
    app.register_blueprint(typed)
    document = build_document(app, title="payment")
    (parameter,) = document["paths"]["/things/{thing_id}"]["get"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 0}
    OpenAPIV31SpecValidator(document).validate()


def test_a_service_that_describes_nothing_documents_the_kit_routes(payment_app: Flask) -> None:
    document = served_document(payment_app)
    OpenAPIV31SpecValidator(document).validate()
    assert documented_operations(document) == KIT_OPERATIONS
