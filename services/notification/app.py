"""The notification service: mails on user.created, order.confirmed, order.cancelled, sent by
a background sender (sender.py); `GET /notifications` lists them and their state."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, request

from catalog import load_catalog
from kit import KitConfig, RequestError, create_service, current_service
from kit.api import json_response
from services.notification import store
from services.notification.handlers import handlers
from services.notification.mailer import MAILER, Mailer, MailSettings, SmtpMailer
from services.notification.metrics import MailMetrics
from services.notification.migrations import HISTORY
from services.notification.sender import MAIL_QUEUED, MailSender, SenderSettings

SERVICE = "notification"
MAX_LIMIT = 1000
# The Flask extension holding the app's MailSender (`mail_sender(app)`).
_SENDER = "shop.notification.sender"


@dataclass(frozen=True)
class NotificationConfig:
    """The notification service's configuration: the kit's, the mail server's, the sender's."""

    kit: KitConfig
    mail: MailSettings
    sending: SenderSettings = field(default_factory=SenderSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotificationConfig:
        return cls(KitConfig.from_env(SERVICE, environ), MailSettings.from_env(environ))


routes = Blueprint("notification", __name__)


@routes.get("/notifications")
def list_notifications() -> Response:
    """The mails and their state, newest first; `?subject=<order or user id>`, `?limit=`
    (default 100). Never waits for the mail server: the sender holds no transaction while it
    sends."""
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
    trusts their certificate). The mail sender starts once the kit's service has (tables
    migrated), and stops when the service closes or the process exits.
    """
    config = config or NotificationConfig.from_env()
    mailer = mailer or SmtpMailer(config.mail)
    queued = threading.Event()
    service = create_service(
        SERVICE,
        handlers,
        config=config.kit,
        schemas=load_catalog().registry,
        migrations=HISTORY,
        # notification.sent's subject is the order id (a welcome mail's: the user id); as
        # `partitionkey` it keeps an order's events in order.
        partition_by_subject=True,
        resources={MAILER: mailer, MAIL_QUEUED: queued},
    )
    service.app.register_blueprint(routes)
    service.start()
    assert service.engine is not None
    metrics = MailMetrics(service.metrics.registry, service.engine)
    sender = MailSender(service, mailer, config.sending, metrics, queued)
    service.app.extensions[_SENDER] = sender
    if config.sending.thread:
        sender.start()
        service.on_close(sender.stop)
        atexit.register(sender.stop)
    return service.app


def mail_sender(app: Flask) -> MailSender:
    """The mail sender of an app made by `create_app` (tests drive it with `run_once()`)."""
    sender: MailSender = app.extensions[_SENDER]
    return sender
