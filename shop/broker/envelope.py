"""An accepted event as the broker holds it, with its wire encodings computed once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shop.broker.admission import TTL_ATTRIBUTE, Headers
from shop.broker.http_client import encode_headers
from wire.http_binding import WireEvent, to_binary, to_structured


@dataclass(slots=True)
class Envelope:
    """One accepted event: what the ingress stored, plus caches shared by every trigger.

    `seq` is given by the store when the event is committed. `event` carries
    `knativearrivaltime` and `knativebrokerttl`; subscribers get it without the hop counter.
    """

    broker: str
    event: WireEvent
    headers: Headers
    arrival: float
    parent_seq: int | None = None
    parent_trigger: str | None = None
    seq: int = 0
    _outgoing: WireEvent | None = field(default=None, repr=False)
    _binary: tuple[dict[str, str], bytes] | None = field(default=None, repr=False)
    _structured: tuple[dict[str, str], bytes] | None = field(default=None, repr=False)
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

    def wire(self, structured: bool) -> tuple[dict[str, str], bytes]:
        """Headers and body of the subscriber request, binary or structured (cached)."""
        if structured:
            if self._structured is None:
                self._structured = to_structured(self.outgoing)
            return self._structured
        if self._binary is None:
            self._binary = to_binary(self.outgoing)
        return self._binary

    def request(self, structured: bool) -> tuple[bytes, bytes]:
        """Encoded headers (pass-through and event) and body of the subscriber request (cached)."""
        found = self._requests.get(structured)
        if found is None:
            headers, body = self.wire(structured)
            found = (encode_headers((*self.headers, *headers.items())), body)
            self._requests[structured] = found
        return found

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
