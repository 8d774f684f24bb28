"""The viewer's one handler: remember every event, answer 202, never reply.

Its Trigger has no filter, so a reply would come straight back to it: a loop. It takes every
valid CloudEvent whatever its data (JSON or not, any content type): the page shows data as
JSON, text or base64, and an event the broker took must be on it.
"""

from __future__ import annotations

from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, ResourceKey, Transaction
from services.viewer.history import EventHistory

HISTORY: ResourceKey[EventHistory] = ResourceKey("viewer history")

handlers = HandlerSet()


@handlers.on_any(raw_data=True)
def remember(event: CloudEvent, tx: Transaction) -> None:
    """Keep the event exactly as it arrived in the ring buffer."""
    assert tx.received is not None  # the kit hands every handler the event as it arrived
    tx.resource(HISTORY).append(tx.received)
