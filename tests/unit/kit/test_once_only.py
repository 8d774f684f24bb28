"""Once-only handling keyed on (source, id), or on more attributes when a handler asks."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent

from kit import HandlerSet, KitConfig, Transaction, create_service
from tests.support.events import binary_request
from wire.http_binding import WireEvent

metadata = sa.MetaData()
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dest", sa.String(200)),
    sa.Column("raw_time", sa.String(200)),
)


def build(tmp_path: Path) -> tuple[object, list[WireEvent]]:
    handlers = HandlerSet()
    received: list[WireEvent] = []

    @handlers.on("t.plain")
    def plain(event: CloudEvent, tx: Transaction) -> None:
        tx.connection.execute(seen.insert().values(dest="plain"))

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
        database_url=f"sqlite:///{tmp_path}/once.db",
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
