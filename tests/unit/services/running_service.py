"""A service's real Flask app driven in-process: CloudEvents to `POST /`, its HTTP API, its outbox.

Shared by the per-service tests and the saga's property test. Events go in as real binary-mode
HTTP requests through the Flask test client; replies come back parsed by the kit's own binding.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kit import KitConfig, Service
from kit.outbox import outbox
from kit.outgoing import Message
from wire.http_binding import WireEvent, parse_binary, to_binary


def kit_config(service: str, database_url: str) -> KitConfig:
    """The kit settings of a service under test: its own database, no relay (tests drain)."""
    return KitConfig(
        service=service,
        database_url=database_url,
        source=f"/shop/{service}",
        relay_enabled=False,
        log_level="WARNING",
    )


def saga_event(
    event_type: str,
    data: Any,
    *,
    subject: str | None = None,
    source: str = "/tests",
    event_id: str | None = None,
) -> WireEvent:
    """A CloudEvent as a producer of the saga would send it (subject = the order id)."""
    attributes: dict[str, str | int | bool] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "datacontenttype": "application/json",
        "dataschema": f"urn:shop:schema:{event_type}",
    }
    if subject is not None:
        attributes["subject"] = subject
    return WireEvent(attributes, json.dumps(data).encode())


@dataclass(frozen=True)
class Delivery:
    """The service's answer to one event: status, and the reply event when it sent one."""

    status: int
    reply: WireEvent | None
    body: bytes

    @property
    def reply_type(self) -> str | None:
        return None if self.reply is None else self.reply.type

    @property
    def reply_data(self) -> Any:
        assert self.reply is not None and self.reply.data is not None, self
        return json.loads(self.reply.data)

    def json(self) -> Any:
        return json.loads(self.body)


def parse_message(headers: dict[str, str], body: bytes) -> WireEvent:
    """The event of a binary-mode message (a reply, or an outbox row), parsed strictly."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    return parse_binary(headers.items(), content_type, body)


class RunningService:
    """One service app, its kit Service and a test client."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.service: Service = app.extensions["shop.kit"]
        self.client: FlaskClient = app.test_client()

    @property
    def name(self) -> str:
        return self.service.name

    def deliver(self, event: WireEvent, client: FlaskClient | None = None) -> Delivery:
        """POST the event in binary mode, as the broker's Trigger would."""
        headers, body = to_binary(event)
        response = (client or self.client).post("/", data=body, headers=headers)
        reply = None
        if response.status_code == 200:
            reply = parse_message(dict(response.headers), response.get_data())
        return Delivery(response.status_code, reply, response.get_data())

    def send(
        self,
        event_type: str,
        data: Any,
        *,
        subject: str | None = None,
        source: str = "/tests",
        event_id: str | None = None,
    ) -> Delivery:
        """Deliver a new event of `event_type` with `data`."""
        event = saga_event(event_type, data, subject=subject, source=source, event_id=event_id)
        return self.deliver(event)

    def drain_outbox(self) -> list[WireEvent]:
        """Take every event waiting in the outbox, oldest first, as the relay would send it."""
        assert self.service.engine is not None
        waiting = sa.select(outbox.c.seq, outbox.c.headers, outbox.c.body).order_by(outbox.c.seq)
        with self.service.engine.connect() as connection:
            if connection.execute(waiting.limit(1)).first() is None:
                return []  # the common case, without taking SQLite's write lock
        with self.service.engine.begin() as connection:
            rows = connection.execute(waiting).all()
            connection.execute(outbox.delete().where(outbox.c.seq.in_([r.seq for r in rows])))
        events = []
        for row in rows:
            message = Message.from_stored(row.headers, row.body)
            events.append(parse_message(message.headers, message.body))
        return events

    @contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """A read connection to the service's own database."""
        assert self.service.engine is not None
        with self.service.engine.connect() as connection:
            yield connection

    def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        with self.connection() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(table))]

    def close(self) -> None:
        self.service.close()


ServiceFactory = Callable[..., RunningService]
