"""Sending a dead letter again: the original event (same id), to the broker or to its subscriber.

Two ways (`Mode`), each one post whose answer is reported, never raised:
- `broker`: the event to the broker's ingress, in binary mode, as a producer posts it; every
  Trigger whose filter matches gets it again, the one that failed and the others.
- `subscriber`: the event to the local broker's `/_shop/redeliver/<namespace>/<broker>` with the
  URL that failed (`knativeerrordest`): the broker gives it to the Triggers with that subscriber
  only (`shop.broker.replay_api`). A Knative broker in a cluster has no such endpoint: there the
  post is refused and the dead letter stays pending, so the default (REDELIVER_DEFAULT_TO) is
  `broker`, and `shop up`'s local profile makes it `subscriber`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_client import Counter

from services.deadletter.store import DeadLetter, Redelivery
from wire.http_binding import WireEvent, to_binary, to_structured_document
from wire.oidc.sender_token import bearer_headers

log = logging.getLogger("shop.deadletter")

Mode = Literal["subscriber", "broker"]
MODES: tuple[Mode, ...] = ("subscriber", "broker")
#: The one every broker takes; `subscriber` (the Triggers that already took the event do not get
#: it twice) where the broker is `shop up`'s.
DEFAULT_MODE: Mode = "broker"


def subscriber_redelivery_url(broker_url: str) -> str:
    """The local broker's endpoint that redelivers to one subscriber, from its ingress URL
    (`http://127.0.0.1:8080/shop/default` -> `http://127.0.0.1:8080/_shop/redeliver/shop/default`)."""
    parts = urlsplit(broker_url)
    path = f"/_shop/redeliver/{parts.path.strip('/')}"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Redeliverer:
    """Sends dead letters back and reports the answer; never raises for it."""

    def __init__(
        self,
        broker_url: str | None,
        timeout_seconds: float,
        outcomes: Counter,
        token_file: str | None = None,
        default_mode: Mode = DEFAULT_MODE,
    ) -> None:
        self.broker_url = broker_url
        self.default_mode = default_mode
        self._timeout = timeout_seconds
        self._outcomes = outcomes
        self._token_file = token_file

    def redeliver(self, dead_letter: DeadLetter, mode: Mode) -> Redelivery:
        """Send `dead_letter`'s original event the way `mode` says."""
        if self.broker_url is None:
            raise RuntimeError("no broker to redeliver to")
        event = dead_letter.original
        if mode == "broker":
            headers, body = to_binary(event)
            return self._post(self.broker_url, headers, body, event, mode)
        document = {"destination": dead_letter.destination, "event": to_structured_document(event)}
        url = subscriber_redelivery_url(self.broker_url)
        body = json.dumps(document).encode()
        return self._post(url, {"Content-Type": "application/json"}, body, event, mode)

    def _post(
        self, url: str, headers: dict[str, str], body: bytes, event: WireEvent, mode: Mode
    ) -> Redelivery:
        """One post: accepted (2xx), refused (another status) or unreachable."""
        attempted_at = time.time()
        try:
            headers.update(bearer_headers(self._token_file))
            response = requests.post(url, data=body, headers=headers, timeout=self._timeout)
        except (OSError, requests.RequestException) as error:
            self._outcomes.labels("unreachable").inc()
            log.warning(
                "redelivery failed: the broker did not answer",
                extra={"event_id": event.id, "type": event.type, "error": str(error)},
            )
            return Redelivery(attempted_at, url, None, "unreachable", str(error))
        outcome = "accepted" if 200 <= response.status_code < 300 else "refused"
        self._outcomes.labels(outcome).inc()
        log.info(
            "redelivery %s (to %s)",
            outcome,
            mode,
            extra={
                "event_id": event.id,
                "type": event.type,
                "source": event.source,
                "outcome": outcome,
                "status": response.status_code,
            },
        )
        return Redelivery(attempted_at, url, response.status_code, outcome, response.text)
