"""The deadletter service's one handler: keep every event the broker gives up on."""

from __future__ import annotations

import logging
import time

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, Transaction
from services.deadletter import store

log = logging.getLogger("shop.deadletter")

handlers = HandlerSet()


# The broker sends one event (same source and id) once per trigger that failed it, told apart by
# `knativeerrordest`; and again after a redelivery that failed too, told apart by the new
# `knativearrivaltime` the ingress stamped on it. Each of those is a dead letter of its own,
# while the broker's retries of one hand-over to this sink are not. The data is kept as it came,
# even when it is not what its type promises: that may be why the event is here.
@handlers.on_any(key_attributes=[store.ERROR_DESTINATION, "knativearrivaltime"], raw_data=True)
def keep_dead_letter(event: CloudEvent, tx: Transaction) -> None:
    """Store the event exactly as it arrived, knativeerror* extensions included."""
    received = tx.received
    assert received is not None  # the kit hands every handler the event as it arrived
    dead_letter_id = store.insert(tx.connection, received, time.time())
    log.warning(
        "dead letter %d stored",
        dead_letter_id,
        extra={
            "event_id": received.id,
            "type": received.type,
            "source": received.source,
            "subject": received.get("subject"),
            "destination": received.get(store.ERROR_DESTINATION),
            "status": store.parse_status(received.get(store.ERROR_CODE)),
        },
    )
