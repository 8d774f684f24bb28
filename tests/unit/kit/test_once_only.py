"""Once-only handling keyed on (source, id), or on more attributes when a handler asks."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, KitConfig, NewEvent, Transaction, create_service, idempotency
from kit.outgoing import Message
from tests.support.events import binary_request
from wire.http_binding import WireEvent, parse_binary

metadata = sa.MetaData()
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dest", sa.String(200)),
    sa.Column("raw_time", sa.String(200)),
)


def build(tmp_path: Path, database_url: str | None = None) -> tuple[object, list[WireEvent]]:
    handlers = HandlerSet()
    received: list[WireEvent] = []

    @handlers.on("t.plain")
    def plain(event: CloudEvent, tx: Transaction) -> None:
        tx.connection.execute(seen.insert().values(dest="plain"))

    @handlers.on("t.reply")
    def reply(event: CloudEvent, tx: Transaction) -> NewEvent:
        tx.connection.execute(seen.insert().values(dest=event.get_source()))
        return NewEvent("t.replied", {"to": event.get_source()})

    @handlers.on_any(key_attributes=["knativeerrordest"])
    def dead_letter(event: CloudEvent, tx: Transaction) -> None:
        assert tx.received is not None
        received.append(tx.received)
        tx.connection.execute(
            seen.insert().values(
                dest=event.get_extension("knativeerrordest"), raw_time=tx.received.get("time")
            )
        )

    config = KitConfig(
        service="once",
        database_url=database_url or f"sqlite:///{tmp_path}/once.db",
        source="/shop/once",
        relay_enabled=False,
    )
    service = create_service("once", handlers, config=config, metadata=metadata).start()
    return service, received


def rows(service: object) -> list[tuple[str, str | None]]:
    with service.engine.connect() as connection:  # type: ignore[attr-defined]
        return [(r.dest, r.raw_time) for r in connection.execute(sa.select(seen)).all()]


def test_an_event_is_handled_once_per_source_and_id(tmp_path: Path) -> None:
    service, _ = build(tmp_path)
    client = service.app.test_client()  # type: ignore[attr-defined]
    headers, body = binary_request("t.plain", {}, id="same")
    assert [client.post("/", headers=headers, data=body).status_code for _ in range(3)] == [202] * 3
    assert rows(service) == [("plain", None)]


def test_the_same_id_from_two_sources_is_two_events_each_with_its_own_answer(
    tmp_path: Path, database_url: str
) -> None:
    service, _ = build(tmp_path, database_url)
    client = service.app.test_client()  # type: ignore[attr-defined]

    def deliver(source: str) -> tuple[int, object]:
        headers, body = binary_request("t.reply", {}, id="same", source=source)
        response = client.post("/", headers=headers, data=body)
        reply = parse_binary(response.headers.items(), response.content_type, response.get_data())
        return response.status_code, reply.data

    sources = ["/producer/a", "/producer/b", "/producer/a", "/producer/b"]
    answers = [deliver(source) for source in sources]
    assert sorted(dest for dest, _ in rows(service)) == ["/producer/a", "/producer/b"]
    # A redelivery gets the answer its own source's event got, not the other producer's.
    assert answers == [
        (200, b'{"to":"/producer/a"}'),
        (200, b'{"to":"/producer/b"}'),
        (200, b'{"to":"/producer/a"}'),
        (200, b'{"to":"/producer/b"}'),
    ]


def test_key_attributes_make_the_same_event_from_two_triggers_two_events(tmp_path: Path) -> None:
    service, received = build(tmp_path)
    client = service.app.test_client()  # type: ignore[attr-defined]
    time = "2026-01-01T00:00:00.123456789Z"
    for dest in ["http://a/", "http://b/", "http://a/"]:
        headers, body = binary_request("t.other", {}, id="same", knativeerrordest=dest, time=time)
        assert client.post("/", headers=headers, data=body).status_code == 202
    assert sorted(dest for dest, _ in rows(service)) == ["http://a/", "http://b/"]
    assert {raw for _, raw in rows(service)} == {time}, "handlers see the event as it arrived"
    assert [event.get("knativeerrordest") for event in received] == ["http://a/", "http://b/"]


def test_each_event_of_one_source_keeps_its_own_answer(tmp_path: Path) -> None:
    service, _ = build(tmp_path)
    client = service.app.test_client()  # type: ignore[attr-defined]

    def deliver(event_id: str) -> bytes:
        headers, body = binary_request("t.reply", {}, id=event_id, source="/producer/a")
        response = client.post("/", headers=headers, data=body)
        assert response.status_code == 200
        return bytes(response.get_data())

    first, second = deliver("e-1"), deliver("e-2")
    assert [deliver("e-1"), deliver("e-2")] == [first, second]
    assert json.loads(first) == json.loads(second) == {"to": "/producer/a"}
    assert len(rows(service)) == 2


def test_the_stored_answer_is_none_until_recorded_and_then_the_answer_given(
    tmp_path: Path, database_url: str
) -> None:
    service, _ = build(tmp_path, database_url)
    engine = service.engine  # type: ignore[attr-defined]
    reply = Message({"ce-id": "r-1", "content-type": "application/json"}, b'{"ok":true}')
    with engine.begin() as connection:
        assert idempotency.find_answer(connection, "/a", "e-1") is None
        assert idempotency.claim(connection, "/a", "e-1", "t.plain")
        assert idempotency.claim(connection, "/a", "e-2", "t.plain")
        assert not idempotency.claim(connection, "/a", "e-1", "t.plain")
    with engine.begin() as connection:
        assert idempotency.find_answer(connection, "/a", "e-1") is None, "claimed, not answered"
        idempotency.record(connection, "/a", "e-1", idempotency.Answer(200, reply))
        idempotency.record(connection, "/a", "e-2", idempotency.ACCEPTED)
    with engine.connect() as connection:
        assert idempotency.find_answer(connection, "/a", "e-1") == idempotency.Answer(200, reply)
        assert idempotency.find_answer(connection, "/a", "e-2") == idempotency.ACCEPTED
        assert idempotency.find_answer(connection, "/b", "e-1") is None
