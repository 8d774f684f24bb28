"""The two WSGI apps the kit benchmark compares, served by the same gunicorn settings."""

from __future__ import annotations

from types import MethodType

from cloudevents.core.v1.event import CloudEvent
from flask import Flask, Response

from kit import HandlerSet, KitConfig, Transaction, create_service


def bare_flask() -> Flask:
    """The baseline: a Flask view that answers 202 to any POST / and looks at nothing."""
    app = Flask("bare")

    @app.post("/")
    def receive() -> Response:
        return Response(status=202)

    return app


def kit_sink() -> Flask:
    """A kit service without database work: strict parsing, routing, metrics, a log line."""
    handlers = HandlerSet()

    @handlers.on_any()
    def accept(event: CloudEvent, tx: Transaction) -> None:
        return None

    config = KitConfig.from_env("bench")
    return create_service("bench", handlers, config=config, stateless=True).app


def kit_sink_through_flask() -> Flask:
    """The same kit sink with POST / routed by Flask: what the kit's own endpoint saves."""
    app = kit_sink()
    app.wsgi_app = MethodType(Flask.wsgi_app, app)  # type: ignore[method-assign]
    return app
