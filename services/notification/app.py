"""The notification service: mails on user.created, order.confirmed, order.cancelled;
`GET /notifications` lists what was sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, request

from catalog import load_catalog
from kit import KitConfig, RequestError, create_service, current_service
from kit.api import json_response
from services.notification import store
from services.notification.handlers import handlers
from services.notification.mailer import MAILER, Mailer, MailSettings, SmtpMailer

SERVICE = "notification"
MAX_LIMIT = 1000


@dataclass(frozen=True)
class NotificationConfig:
    """The notification service's configuration: the kit's and the mail server's."""

    kit: KitConfig
    mail: MailSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotificationConfig:
        return cls(KitConfig.from_env(SERVICE, environ), MailSettings.from_env(environ))


routes = Blueprint("notification", __name__)


@routes.get("/notifications")
def list_notifications() -> Response:
    """The mails sent, newest first; `?subject=<order or user id>`, `?limit=` (default 100)."""
    raw_limit = request.args.get("limit", "100")
    if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_LIMIT:
        raise RequestError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
    with current_service().transaction() as tx:
        found = store.list_notifications(
            tx.connection, subject=request.args.get("subject"), limit=int(raw_limit)
        )
    return json_response(200, found)


def create_app(config: NotificationConfig | None = None, mailer: Mailer | None = None) -> Flask:
    """The notification service's WSGI app: `gunicorn "services.notification.app:create_app()"`.

    `mailer` replaces the SMTP mailer built from the configuration (tests with TLS pass one that
    trusts their certificate).
    """
    config = config or NotificationConfig.from_env()
    service = create_service(
        SERVICE,
        handlers,
        config=config.kit,
        schemas=load_catalog().registry,
        metadata=store.metadata,
        resources={MAILER: mailer or SmtpMailer(config.mail)},
    )
    service.app.register_blueprint(routes)
    return service.start().app
