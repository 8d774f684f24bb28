"""The customer service: `POST /users`, `GET /users/<id>`; `user.created` through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response

from catalog import load_catalog
from kit import KitConfig, NewEvent, RequestError, create_service, current_service
from kit.api import BodySchema, json_response
from kit.idempotent_routes import idempotent
from kit.openapi import ERROR, LOCATION, Operation, Reply, describe
from services.customer import store
from services.customer.handlers import handlers
from services.customer.migrations import HISTORY
from wire.strings import quote

SERVICE = "customer"


NEW_USER = BodySchema(
    {
        "type": "object",
        "required": ["name", "email"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
            "email": {
                "type": "string",
                "maxLength": 254,
                "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            },
        },
        "additionalProperties": False,
    }
)

USER_VIEW = {
    "type": "object",
    "required": ["id", "name", "email", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "created_at": {"type": "string"},
    },
}

routes = Blueprint("customer", __name__)
describe(
    routes,
    {
        ("POST", "/users"): Operation(
            "Register a user (user.created through the outbox)",
            request=NEW_USER,
            responses={
                201: Reply(USER_VIEW, "the user", headers=LOCATION),
                409: Reply(ERROR.schema, "the email is registered already"),
            },
        ),
        ("GET", "/users/<user_id>"): Operation(
            "A user", responses={200: Reply(USER_VIEW), 404: ERROR}
        ),
    },
)


@routes.post("/users")
@idempotent
def register_user() -> Response:
    """Register a user: 201 with the user and Location; 409 when the email is taken."""
    body = NEW_USER.parse()
    user = store.User(
        id=str(uuid.uuid4()),
        name=body["name"].strip(),
        email=body["email"].strip(),
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    try:
        with current_service().transaction() as tx:
            if store.email_taken(tx.connection, user.email):
                raise _email_taken(user.email)
            store.insert_user(tx.connection, user)
            tx.emit(
                NewEvent(
                    "user.created",
                    {"user_id": user.id, "name": user.name, "email": user.email},
                    subject=user.id,
                )
            )
    except sa.exc.IntegrityError as error:
        # Two registrations of one address at once: the unique index lets only one through.
        # It refuses the INSERT itself, so this holds with an Idempotency-Key too, where the
        # transaction is the request's and commits after this block (kit/idempotent_routes.py).
        raise _email_taken(user.email) from error
    return json_response(201, _view(user), {"Location": f"/users/{user.id}"})


@routes.get("/users/<user_id>")
def show_user(user_id: str) -> Response:
    """One user, or 404."""
    with current_service().transaction() as tx:
        user = store.find_user(tx.connection, user_id)
    if user is None:
        raise RequestError(404, f"no user {quote(user_id)}")
    return json_response(200, _view(user))


def _email_taken(email: str) -> RequestError:
    return RequestError(
        409, f"a user with email {quote(email)} is registered already", field="email"
    )


def _view(user: store.User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "created_at": user.created_at}


def create_app(config: KitConfig | None = None) -> Flask:
    """The customer service's WSGI app: `gunicorn "services.customer.app:create_app()"`."""
    service = create_service(
        SERVICE,
        handlers,
        config=config or KitConfig.from_env(SERVICE),
        schemas=load_catalog().registry,
        migrations=HISTORY,
    )
    service.app.register_blueprint(routes)
    return service.start().app
