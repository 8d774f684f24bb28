"""The outbox relay sends the token of OIDC_TOKEN_FILE with each event, read afresh every time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kit import HandlerSet, KitConfig, NewEvent, Service, create_service
from kit.outbox import outbox
from tests.support.processes import wait_for
from tests.support.recording_sink import Received, RecordingSink


def write_token(path: Path, token: str) -> None:
    """Replace the file as the kubelet and `shop up` do: a reader sees old or new, never half."""
    temporary = path.with_name(".token.tmp")
    temporary.write_text(token + "\n")
    os.replace(temporary, path)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "oidc" / "token"


@pytest.fixture
def producer(tmp_path: Path, broker: RecordingSink, token_file: Path) -> Iterator[Service]:
    config = KitConfig(
        service="producer",
        database_url=f"sqlite:///{tmp_path}/producer.db",
        source="/shop/producer",
        sink=broker.url,
        relay_poll_seconds=0.1,
        log_level="WARNING",
        sender_token_file=str(token_file),
    )
    service = create_service("producer", HandlerSet(), config=config).start()
    yield service
    service.close()


def emit_and_receive(producer: Service, broker: RecordingSink, n: int) -> Received:
    with producer.transaction() as tx:
        tx.emit(NewEvent("t.numbered", {"n": n}))
    arrived = wait_for(
        lambda: broker.accepted() if len(broker.accepted()) > n else None,
        what=f"event {n} at the broker",
    )
    return arrived[n]


def test_the_relay_sends_the_token_in_the_file_and_picks_up_a_rewritten_one(
    producer: Service, broker: RecordingSink, token_file: Path
) -> None:
    token_file.parent.mkdir(parents=True)
    write_token(token_file, "first-token")
    assert emit_and_receive(producer, broker, 0).headers["authorization"] == "Bearer first-token"
    write_token(token_file, "renewed-token")
    assert emit_and_receive(producer, broker, 1).headers["authorization"] == (
        "Bearer renewed-token"
    )


def test_without_the_file_the_relay_sends_no_authorization(
    producer: Service, broker: RecordingSink
) -> None:
    assert "authorization" not in emit_and_receive(producer, broker, 0).headers


def test_an_empty_token_file_holds_the_event_back_for_a_retry(
    producer: Service, broker: RecordingSink, token_file: Path
) -> None:
    token_file.parent.mkdir(parents=True)
    token_file.write_text("")
    with producer.transaction() as tx:
        tx.emit(NewEvent("t.numbered", {"n": 0}))
    assert producer.engine is not None
    engine = producer.engine

    def failed_attempt() -> str | None:
        with engine.connect() as connection:
            row = connection.execute(sa.select(outbox.c.attempts, outbox.c.last_error)).one()
        return row.last_error if row.attempts >= 1 else None

    error = wait_for(failed_attempt, what="a failed relay attempt")
    assert error == f"no token to send: the token file {token_file} is empty"
    assert broker.accepted() == []
