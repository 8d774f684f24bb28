"""Posting a dead letter back to the broker: the original event, same id, in binary mode."""

from __future__ import annotations

import logging
import time

import requests
from prometheus_client import Counter

from services.deadletter.store import Redelivery
from wire.http_binding import WireEvent, to_binary
from wire.oidc.sender_token import bearer_headers

log = logging.getLogger("shop.deadletter")


class Redeliverer:
    """Sends events to the broker's ingress and reports its answer; never raises for it."""

    def __init__(
        self,
        broker_url: str | None,
        timeout_seconds: float,
        outcomes: Counter,
        token_file: str | None = None,
    ) -> None:
        self.broker_url = broker_url
        self._timeout = timeout_seconds
        self._outcomes = outcomes
        self._token_file = token_file

    def send(self, event: WireEvent) -> Redelivery:
        """Post `event` to the broker: accepted (2xx), refused (another status) or unreachable."""
        if self.broker_url is None:
            raise RuntimeError("no broker to redeliver to")
        headers, body = to_binary(event)
        attempted_at = time.time()
        try:
            headers.update(bearer_headers(self._token_file))
            response = requests.post(
                self.broker_url, data=body, headers=headers, timeout=self._timeout
            )
        except (OSError, requests.RequestException) as error:
            self._outcomes.labels("unreachable").inc()
            log.warning(
                "redelivery failed: the broker did not answer",
                extra={"event_id": event.id, "type": event.type, "error": str(error)},
            )
            return Redelivery(attempted_at, self.broker_url, None, "unreachable", str(error))
        outcome = "accepted" if 200 <= response.status_code < 300 else "refused"
        self._outcomes.labels(outcome).inc()
        log.info(
            "redelivery %s",
            outcome,
            extra={
                "event_id": event.id,
                "type": event.type,
                "source": event.source,
                "outcome": outcome,
                "status": response.status_code,
            },
        )
        return Redelivery(
            attempted_at, self.broker_url, response.status_code, outcome, response.text
        )
