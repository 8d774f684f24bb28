"""A CloudEvent as a RabbitMQ message, both ways (eventing-rabbitmq `pkg/rabbit/message.go`).

Writing: persistent, the body is the event's data, the message id is the event's id, and every
attribute is a header named without a prefix: `specversion`, `id`, `type`, `source`,
`subject`, `time`, `dataschema`, each extension by its name, and `datacontenttype` as
`content-type` (so a filter on `datacontenttype` never matches). Upstream also writes
`content-type` and `time` for an event without them (as "" and Go's zero time); here an
absent attribute is simply not written, so the subscriber gets the event as it was sent.

Reading: `content-type` is the data content type, `x-` headers (RabbitMQ's, the trigger's
binding keys) and `traceparent`/`tracestate` are not attributes, a `ce-` prefix is dropped.
Upstream's dispatcher reads those two as the trace context (`readSpan` in
`pkg/dispatcher/dispatcher.go`) and the subscriber gets it as the W3C HTTP headers of the
same names (`trace_headers`), not as the event's extension.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import aio_pika

from wire.http_binding import WireEvent
from wire.spec import Attributes, AttributeValue

CONTENT_TYPE_HEADER = "content-type"
_NOT_ATTRIBUTES = frozenset({"traceparent", "tracestate"})


def to_message(
    event: WireEvent, extra: Mapping[str, AttributeValue] | None = None
) -> aio_pika.Message:
    """The persistent message that carries `event` (with `extra` attributes added)."""
    return aio_pika.Message(
        body=event.data or b"",
        headers=message_headers(event, extra),  # type: ignore[arg-type]
        message_id=event.id,
        content_type=event.get("datacontenttype"),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def message_headers(
    event: WireEvent, extra: Mapping[str, AttributeValue] | None = None
) -> dict[str, AttributeValue]:
    """The headers of the message that carries `event`: what a binding matches."""
    headers: dict[str, AttributeValue] = {}
    for name, value in event.attributes.items():
        headers[CONTENT_TYPE_HEADER if name == "datacontenttype" else name] = value
    if extra:
        headers.update(extra)
    return headers


def from_message(headers: Mapping[str, object], body: bytes) -> WireEvent:
    """The CloudEvent a message carries (its validity is the sender's concern)."""
    attributes: Attributes = {}
    for key, raw in headers.items():
        name = key.lower()
        if name.startswith("x-") or name in _NOT_ATTRIBUTES:
            continue
        name = name.removeprefix("ce-")
        if name == CONTENT_TYPE_HEADER:
            name = "datacontenttype"
        value = _attribute_value(raw)
        if value is not None:
            attributes[name] = value
    return WireEvent(attributes, body or None)


def trace_headers(headers: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The W3C trace context a message carries, as the HTTP headers a delivery sends."""
    return tuple(
        (name, str(value))
        for name in ("traceparent", "tracestate")
        if (value := _attribute_value(headers.get(name)))
    )


def _attribute_value(raw: object) -> AttributeValue | None:
    if isinstance(raw, bool | int | str):
        return raw
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, dt.datetime):
        return raw.isoformat()
    if raw is None:
        return None
    return str(raw)
