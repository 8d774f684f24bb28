"""The notification service's own metrics, in the kit's registry (served on `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.engine import Engine

from services.notification import store


class MailMetrics:
    """Mails waiting to be sent, and what became of the attempts to send them."""

    def __init__(self, registry: CollectorRegistry, engine: Engine) -> None:
        def pending() -> float:
            # Counted in the database at every scrape, so that every worker process, and a
            # restarted one, reports the same number.
            with engine.connect() as connection:
                return float(store.count_pending(connection))

        self.pending = Gauge(
            "shop_mails_pending",
            "Mails stored to be sent that the mail server has not accepted yet",
            registry=registry,
        )
        self.pending.set_function(pending)
        self.sent = Counter("shop_mails_sent", "Mails the mail server accepted", registry=registry)
        self.failed = Counter(
            "shop_mails_failed",
            "Mails the mail server refused for good (5xx), marked failed and not retried",
            registry=registry,
        )
        self.send_failures = Counter(
            "shop_mail_send_failures",
            "Attempts to send a mail that failed for now (unreachable, 4xx, timeout): retried",
            registry=registry,
        )
