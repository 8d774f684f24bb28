"""`Idempotency-Key` on a JSON route (kit/request_keys.py, kit/idempotent_routes.py), on SQLite
and PostgreSQL: a retry replays the first answer and changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint, Response

from kit import (
    HandlerSet,
    KitConfig,
    NewEvent,
    RequestError,
    ResourceKey,
    Service,
    create_service,
    current_service,
)
from kit.api import BodySchema, json_response
from kit.idempotent_routes import REPLAYED_HEADER, idempotent
from kit.outbox import outbox
from kit.request_keys import MAX_KEY_LENGTH, fingerprint, parse_key, request_keys

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
)


@dataclass
class Gate:
    """What the test tells the route: refuse the next request, or hold it until released."""

    refuse: bool = False
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


GATE = ResourceKey[Gate]("gate")
THING = BodySchema(
    {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "hold": {"type": "boolean"}, "n": {}},
        "additionalProperties": False,
    }
)
routes = Blueprint("keyed", __name__)


@routes.post("/things")
@idempotent
def make_thing() -> Response:
    body = THING.parse()
    gate = current_service().resource(GATE)
    with current_service().transaction() as tx:
        seq = tx.connection.execute(
            things.insert().values(name=body["name"]).returning(things.c.seq)
        ).scalar_one()
        tx.emit(NewEvent("test.thing", {"seq": seq}))
        if gate.refuse:
            raise RequestError(409, "refused on purpose")
        if body.get("hold"):
            gate.entered.set()
            assert gate.release.wait(10), "the test never released the request"
    return json_response(201, {"seq": seq, "name": body["name"]}, {"Location": f"/things/{seq}"})


@routes.post("/others")
@idempotent
def make_other() -> Response:
    body = THING.parse()
    with current_service().transaction() as tx:
        seq = tx.connection.execute(
            things.insert().values(name=body["name"]).returning(things.c.seq)
        ).scalar_one()
    return json_response(200, {"seq": seq})


@dataclass
class App:
    service: Service
    gate: Gate

    def post(self, path: str, body: Any, key: str | None = None) -> Any:
        """POST `body` as JSON, its members in the order given (Flask's client would sort them)."""
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        data = json.dumps(body)
        return self.service.app.test_client().post(path, data=data, headers=headers)

    def count(self, table: sa.Table) -> int:
        assert self.service.engine is not None
        with self.service.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar())

    def keys(self) -> list[str]:
        assert self.service.engine is not None
        with self.service.engine.connect() as connection:
            return sorted(connection.execute(sa.select(request_keys.c.key)).scalars())


def build(database_url: str, hours: float = 24.0) -> App:
    gate = Gate()
    config = KitConfig(
        service="keyed",
        database_url=database_url,
        source="/shop/keyed",
        relay_enabled=False,
        log_level="WARNING",
        idempotency_key_hours=hours,
    )
    service = create_service(
        "keyed", HandlerSet(), config=config, metadata=metadata, resources={GATE: gate}
    )
    service.app.register_blueprint(routes)
    return App(service.start(), gate)


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    built = build(database_url)
    yield built
    built.service.close()


# -- the header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ('"order-2026-0001"', "order-2026-0001"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"a key with spaces"', "a key with spaces"),
        (r'"say \"hi\" \\ bye"', r'say "hi" \ bye'),
        ("  token:with/slash  ", "token:with/slash"),
        ('"' + "k" * MAX_KEY_LENGTH + '"', "k" * MAX_KEY_LENGTH),
    ],
)
def test_a_key_is_a_structured_fields_string_or_a_bare_token(raw: str, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        '""',
        "",
        '"' + "k" * (MAX_KEY_LENGTH + 1) + '"',
        "k" * (MAX_KEY_LENGTH + 1),
        '"unterminated',
        '"a", "b"',  # sent twice, joined by the server
        "a b",
        '"caf\u00e9"',
        '"tab\there"',
        r'"bad \n escape"',
        '"k";param=1',
    ],
)
def test_a_malformed_key_is_refused_naming_the_header_and_the_limit(app: App, raw: str) -> None:
    with pytest.raises(RequestError) as refused:
        parse_key(raw)
    assert refused.value.to_json()["field"] == "Idempotency-Key"
    response = app.post("/things", {"name": "tea"}, key=raw)
    assert response.status_code == 400, response.get_json()
    assert response.get_json() == {
        "error": refused.value.message,
        "field": "Idempotency-Key",
        "limit": MAX_KEY_LENGTH,
    }
    assert app.count(things) == 0


def test_the_fingerprint_ignores_member_order_but_not_values_or_the_path() -> None:
    first = fingerprint("/things", b'{"name": "tea", "n": [1, 2]}')
    assert fingerprint("/things", b'{"n":[1,2],"name":"tea"}') == first
    assert fingerprint("/things", b'{"n": [2, 1], "name": "tea"}') != first
    assert fingerprint("/things?x=1", b'{"name": "tea", "n": [1, 2]}') != first
    assert fingerprint("/things", b"not json") == fingerprint("/things", b"not json")
    assert fingerprint("/things", b"not json") != fingerprint("/things", b"not json ")


# -- the semantics -------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer_and_changes_nothing(app: App) -> None:
    first = app.post("/things", {"name": "tea", "n": 1}, key='"k-1"')
    assert first.status_code == 201
    assert REPLAYED_HEADER not in first.headers
    # The same key bare rather than quoted, the members in another order: the same request.
    again = app.post("/things", {"n": 1, "name": "tea"}, key="k-1")
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == "application/json"
    assert again.headers[REPLAYED_HEADER] == "true"
    assert app.count(things) == 1
    assert app.count(outbox) == 1, "one event for one request, however often retried"


def test_the_same_key_with_another_body_is_refused_with_422(app: App) -> None:
    assert app.post("/things", {"name": "tea"}, key="k-2").status_code == 201
    refused = app.post("/things", {"name": "coffee"}, key="k-2")
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["field"] == "Idempotency-Key"
    assert "different request" in body["error"]
    assert app.count(things) == 1


def test_keys_are_scoped_by_route(app: App) -> None:
    assert app.post("/things", {"name": "tea"}, key="shared").status_code == 201
    other = app.post("/others", {"name": "tea"}, key="shared")
    assert other.status_code == 200
    assert REPLAYED_HEADER not in other.headers
    assert app.count(things) == 2
    assert app.post("/others", {"name": "tea"}, key="shared").headers[REPLAYED_HEADER] == "true"


def test_without_a_key_the_same_body_twice_is_two_requests(app: App) -> None:
    answers = [app.post("/things", {"name": "tea"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].get_json()["seq"] != answers[1].get_json()["seq"]
    assert app.count(things) == 2
    assert app.keys() == []


def test_an_error_the_route_raises_is_not_remembered(app: App) -> None:
    app.gate.refuse = True
    refused = app.post("/things", {"name": "tea"}, key="k-3")
    assert refused.status_code == 409
    assert refused.get_json() == {"error": "refused on purpose"}
    assert (app.count(things), app.count(outbox), app.keys()) == (0, 0, [])
    app.gate.refuse = False
    accepted = app.post("/things", {"name": "tea"}, key="k-3")
    assert accepted.status_code == 201
    assert REPLAYED_HEADER not in accepted.headers
    assert app.keys() == ["k-3"]


def test_an_expired_key_is_new_again_and_expired_keys_are_pruned(database_url: str) -> None:
    app = build(database_url, hours=1e-9)  # every key expires as soon as it is stored
    try:
        first = app.post("/things", {"name": "tea"}, key="old")
        second = app.post("/things", {"name": "tea"}, key="old")
        assert (first.status_code, second.status_code) == (201, 201)
        assert REPLAYED_HEADER not in second.headers
        assert first.get_json()["seq"] != second.get_json()["seq"]
        assert app.post("/things", {"name": "tea"}, key="new").status_code == 201
        assert app.keys() == ["new"], "the expired key's row went with the next keyed request"
    finally:
        app.service.close()


def test_a_key_in_progress_answers_409_on_postgresql_and_waits_on_sqlite(app: App) -> None:
    body = {"name": "tea", "hold": True}
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(app.post, "/things", body, "busy")
        assert app.gate.entered.wait(10), "the first request never reached the route"
        second = pool.submit(app.post, "/things", body, "busy")
        if app.service.engine is not None and app.service.engine.dialect.name == "postgresql":
            refused = second.result(10)
            assert refused.status_code == 409
            assert refused.headers["Retry-After"] == "1"
            assert refused.get_json()["field"] == "Idempotency-Key"
            app.gate.release.set()
            assert first.result(10).status_code == 201
            replay = app.post("/things", body, "busy")
        else:
            # SQLite: the second request waits for the write lock, then finds the key's answer.
            app.gate.release.set()
            assert first.result(10).status_code == 201
            replay = second.result(10)
    assert replay.status_code == 201
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert replay.get_data() == first.result().get_data()
    assert app.count(things) == 1


def test_an_expired_key_is_new_again_beyond_the_prune_batch(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kit.request_keys.PRUNE_BATCH", 0)
    app = build(database_url, hours=1e-9)
    try:
        assert app.post("/things", {"name": "tea"}, key="old").status_code == 201
        second = app.post("/things", {"name": "coffee"}, key="old")
        assert second.status_code == 201, "an expired key names no request any more"
        assert app.count(things) == 2
    finally:
        app.service.close()
