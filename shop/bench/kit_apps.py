"""The two WSGI apps the kit benchmark compares, served by the same gunicorn settings."""

from __future__ import annotations

from types import MethodType

from cloudevents.core.v1.event import CloudEvent
from flask import Flask, Response, request

from kit import HandlerSet, KitConfig, Service, Transaction, create_service
from kit.endpoint import EVENTS_RULE, EventEndpoint


def bare_flask() -> Flask:
    """The baseline: a Flask view that answers 202 to any POST / and looks at nothing."""
    app = Flask("bare")

    @app.post("/")
    def receive() -> Response:
        return Response(status=202)

    return app


def kit_sink() -> Flask:
    """A kit service without database work: strict parsing, routing, metrics, a log line."""
    return _kit_service().app


def _kit_service() -> Service:
    handlers = HandlerSet()

    @handlers.on_any()
    def accept(event: CloudEvent, tx: Transaction) -> None:
        return None

    config = KitConfig.from_env("bench")
    return create_service("bench", handlers, config=config, stateless=True).start()


def kit_sink_through_flask() -> Flask:
    """The same kit sink with POST / routed by Flask: what the kit's own endpoint saves."""
    app = kit_sink()
    endpoint = app.wsgi_app
    assert isinstance(endpoint, EventEndpoint)

    def receive() -> Response:
        answer = endpoint.receive(request.environ)
        return Response(answer.body, answer.status, headers=answer.headers)

    app.view_functions[EVENTS_RULE] = receive
    app.wsgi_app = MethodType(Flask.wsgi_app, app)  # type: ignore[method-assign]
    return app
