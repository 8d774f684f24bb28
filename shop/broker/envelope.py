"""An accepted event as the broker holds it, with its wire encodings computed once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shop.broker.admission import TTL_ATTRIBUTE, Headers
from shop.broker.http_client import encode_headers
from wire.http_binding import WireEvent, to_binary, to_structured
from wire.knative import add_dead_letter_extensions

if TYPE_CHECKING:
    from shop.broker.tracing import SpanContext


@dataclass(slots=True)
class Envelope:
    """One accepted event: what the ingress stored, plus caches shared by every trigger.

    `seq` is given by the store when the event is committed. `event` carries
    `knativearrivaltime` and `knativebrokerttl`; subscribers get it without the hop counter.
    `partition` is the partition of its Kafka topic, given when an ordered Trigger first needs it.
    `trace` is its receive span (`shop.broker.tracing`), the parent of its delivery spans; None
    with tracing off, and for an event read back from the store.
    """

    broker: str
    event: WireEvent
    headers: Headers
    arrival: float
    parent_seq: int | None = None
    parent_trigger: str | None = None
    seq: int = 0
    partition: int | None = None
    trace: SpanContext | None = None
    _outgoing: WireEvent | None = field(default=None, repr=False)
    _requests: dict[bool, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)

    @property
    def ttl(self) -> int:
        """The hop counter the ingress gave the event."""
        return int(self.event.attributes[TTL_ATTRIBUTE])

    @property
    def outgoing(self) -> WireEvent:
        """The event as subscribers get it: the hop counter removed."""
        if self._outgoing is None:
            self._outgoing = self.event.with_attributes(**{TTL_ATTRIBUTE: None})
        return self._outgoing

    def request(self, structured: bool) -> tuple[bytes, bytes]:
        """Encoded headers and body of the subscriber request, binary or structured (cached)."""
        found = self._requests.get(structured)
        if found is None:
            found = self._requests[structured] = encode_request(
                self.outgoing, self.headers, structured
            )
        return found

    def dead_letter_request(
        self, extensions: Mapping[str, str], structured: bool
    ) -> tuple[bytes, bytes]:
        """Encoded headers and body of the dead-letter sink request: the event as stored (hop
        counter included, as Knative's channel sends it) with the dead-letter extensions."""
        attributes = add_dead_letter_extensions(self.event.attributes, extensions)
        return encode_request(WireEvent(attributes, self.event.data), self.headers, structured)

    def row(self) -> tuple[object, ...]:
        """The `events` row (without seq) this envelope is stored as."""
        event = self.event
        return (
            self.broker,
            event.id,
            event.type,
            event.source,
            self.arrival,
            json.dumps(event.attributes, separators=(",", ":"), ensure_ascii=False),
            event.data,
            json.dumps(self.headers) if self.headers else None,
            self.parent_seq,
            self.parent_trigger,
        )

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> Envelope:
        """An envelope read back from `SELECT seq, <row columns>`."""
        seq, broker, _id, _type, _source, arrival, attributes, data, headers, parent, trigger = row
        return cls(
            broker=str(broker),
            event=WireEvent(json.loads(str(attributes)), _bytes(data)),
            headers=tuple((str(k), str(v)) for k, v in json.loads(str(headers))) if headers else (),
            arrival=float(arrival),  # type: ignore[arg-type]
            parent_seq=None if parent is None else int(parent),  # type: ignore[call-overload]
            parent_trigger=None if trigger is None else str(trigger),
            seq=int(seq),  # type: ignore[call-overload]
        )


def _bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    raise TypeError(f"event data must be stored as a BLOB, found {type(value).__name__}")


def encode_request(event: WireEvent, headers: Headers, structured: bool) -> tuple[bytes, bytes]:
    """Encoded headers (pass-through, then the event's) and body of a request carrying `event`."""
    event_headers, body = to_structured(event) if structured else to_binary(event)
    return encode_headers((*headers, *event_headers.items())), body
