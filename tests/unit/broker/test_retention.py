"""Retention: which events a step prunes, with what, how much at a time, what the journal says."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from shop.broker import retention
from shop.broker.config import parse_age, parse_bytes, retention_text
from shop.broker.journal import Journal
from shop.broker.retention import Pruner, store_bytes
from shop.broker.store import SCHEMA, connect, last_seq

AGE = 60.0
NOW = 1_800_000_000.0
OLD = NOW - 2 * AGE
YOUNG = NOW - AGE / 2
TABLES = ("events", "deliveries", "attempts", "dead_letters")


def add_event(
    connection: sqlite3.Connection,
    seq: int,
    arrival: float,
    states: tuple[str, ...] = ("delivered",),
    data: bytes = b'{"n": 1}',
) -> None:
    """An event with one delivery per state (trigger t0, t1, ...), an attempt each, and a local
    dead letter for each `kept` one."""
    attributes = {
        "specversion": "1.0",
        "id": f"e{seq}",
        "source": "/s",
        "type": "t",
        "datacontenttype": "application/json",
        "knativebrokerttl": 255,
    }
    connection.execute(
        "INSERT INTO events (seq, broker, event_id, type, source, arrival, attributes, data)"
        " VALUES (?, 'shop/default', ?, 't', '/s', ?, ?, ?)",
        (seq, f"e{seq}", arrival, json.dumps(attributes), data),
    )
    for number, state in enumerate(states):
        trigger = f"shop/t{number}"
        connection.execute(
            "INSERT INTO deliveries (event_seq, trigger, state, attempts) VALUES (?, ?, ?, 1)",
            (seq, trigger, state),
        )
        connection.execute(
            "INSERT INTO attempts (event_seq, trigger, attempt, target, url, started,"
            " duration_ms, status, outcome) VALUES (?, ?, 1, 'subscriber', 'http://x', ?, 1, 202,"
            " 'delivered')",
            (seq, trigger, arrival),
        )
        if state == "kept":
            connection.execute(
                "INSERT INTO dead_letters (event_seq, trigger, time, reason) VALUES (?, ?, ?, 'r')",
                (seq, trigger, arrival),
            )


def rows(connection: sqlite3.Connection, seq: int) -> dict[str, int]:
    """How many rows of each table belong to the event `seq`."""
    return {
        table: connection.execute(
            f"SELECT count(*) FROM {table} WHERE {'seq' if table == 'events' else 'event_seq'} = ?",
            (seq,),
        ).fetchone()[0]
        for table in TABLES
    }


def pruner(connection: sqlite3.Connection, max_bytes: int = 2**40) -> Pruner:
    return Pruner(connection, AGE, max_bytes, clock=lambda: NOW)


@pytest.fixture
def connection(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "broker.db", "normal")


@pytest.mark.parametrize(
    ("states", "pruned"),
    [
        (("delivered",), True),
        (("dead_lettered",), True),
        (("kept",), True),
        ((), True),  # matched no trigger
        (("delivered", "dead_lettered", "kept"), True),
        (("pending",), False),
        (("dead_lettering",), False),
        (("delivered", "pending"), False),
        (("kept", "dead_lettering"), False),
    ],
)
def test_an_old_event_is_pruned_with_all_its_rows_only_when_every_delivery_is_final(
    connection: sqlite3.Connection, states: tuple[str, ...], pruned: bool
) -> None:
    add_event(connection, 1, OLD, states)
    before = rows(connection, 1)
    step = pruner(connection).step()
    after = rows(connection, 1)
    if pruned:
        assert step.by_age == 1
        assert after == dict.fromkeys(TABLES, 0)
    else:
        assert step.pruned == 0
        assert after == before


def test_a_finished_event_younger_than_the_age_is_kept_while_the_store_is_within_its_size(
    connection: sqlite3.Connection,
) -> None:
    add_event(connection, 1, OLD)
    add_event(connection, 2, YOUNG)
    add_event(connection, 3, OLD)  # out of arrival order: the sweep ends at the young one
    step = pruner(connection).step()
    assert step.by_age == 1 and not step.more
    assert rows(connection, 1)["events"] == 0
    assert rows(connection, 2)["events"] == 1


def test_over_its_size_the_store_prunes_the_oldest_finished_events_and_never_unfinished_ones(
    connection: sqlite3.Connection,
) -> None:
    payload = b"x" * 4000  # about a page each
    add_event(connection, 1, YOUNG, ("pending",), payload)
    for seq in range(2, 202):
        add_event(connection, seq, YOUNG, ("delivered",), payload)
    max_bytes = 256 * 1024
    prune = pruner(connection, max_bytes)
    steps = [prune.step() for _ in range(10)]
    assert sum(step.by_size for step in steps) > 100
    assert sum(step.by_age for step in steps) == 0
    live = steps[-1].live_bytes
    assert live <= max_bytes, live
    kept = [seq for (seq,) in connection.execute("SELECT seq FROM events ORDER BY seq")]
    assert kept[0] == 1  # unfinished, the oldest of all
    assert kept[1:] == list(range(kept[1], 202))  # the newest finished ones, none skipped


def test_a_step_prunes_one_batch_and_asks_to_come_back_soon(
    connection: sqlite3.Connection,
) -> None:
    for seq in range(1, retention.BATCH_EVENTS * 2 + 51):
        add_event(connection, seq, OLD)
    prune = pruner(connection)
    first = prune.step()
    assert first.by_age == retention.BATCH_EVENTS and first.more
    assert prune.seconds_until_due() < retention.INTERVAL_SECONDS
    prune.step()
    last = prune.step()
    assert last.by_age == 50 and not last.more
    assert prune.seconds_until_due() == pytest.approx(retention.INTERVAL_SECONDS, abs=0.1)


def test_the_journal_says_where_pruned_history_ends_and_seqs_are_never_given_twice(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    for seq in (1, 2, 3):
        add_event(connection, seq, OLD)
    add_event(connection, 4, OLD, ("pending",))
    add_event(connection, 5, OLD)
    pruner(connection).step()
    history = Journal(tmp_path / "broker.db").history()
    assert history == {
        "oldest_seq": 4,
        "last_seq": 5,
        "pruned_before_seq": 6,
        "retention": {"age_seconds": AGE, "max_bytes": 2**40, "pruned_events": 4},
    }
    connection.execute("UPDATE deliveries SET state = 'delivered' WHERE event_seq = 4")
    pruner(connection).step()
    assert connection.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert last_seq(connection) == 5  # what the writer continues from after a restart


def test_pruned_pages_go_back_to_the_file_system(connection: sqlite3.Connection) -> None:
    for seq in range(1, 301):
        add_event(connection, seq, OLD, data=b"x" * 4000)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages_before = connection.execute("PRAGMA page_count").fetchone()[0]
    prune = pruner(connection)
    while prune.step().more:
        pass
    pages_after = connection.execute("PRAGMA page_count").fetchone()[0]
    free = connection.execute("PRAGMA freelist_count").fetchone()[0]
    assert pages_after < pages_before / 4, (pages_before, pages_after)
    assert free < retention.VACUUM_MIN_PAGES


def test_a_database_of_schema_1_is_upgraded_and_given_incremental_vacuum(tmp_path: Path) -> None:
    database = tmp_path / "broker.db"
    old = sqlite3.connect(database, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(SCHEMA.split("CREATE INDEX IF NOT EXISTS dead_letters_by_event")[0])
    old.execute("PRAGMA user_version=1")
    add_event(old, 7, OLD)
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    old.close()
    connection = connect(database, "normal")
    assert connection.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    assert rows(connection, 7)["events"] == 1
    assert pruner(connection).step().by_age == 1


def test_the_journal_can_give_each_event_as_its_subscribers_get_it(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    add_event(connection, 1, YOUNG)
    [event] = Journal(tmp_path / "broker.db").events(data=True)
    assert event["event"]["data"] == {"n": 1}
    assert "knativebrokerttl" not in event["event"]
    assert event["attributes"]["knativebrokerttl"] == 255  # as stored


def test_the_store_size_counts_the_database_and_its_wal(
    connection: sqlite3.Connection, tmp_path: Path
) -> None:
    add_event(connection, 1, YOUNG)
    files = [tmp_path / name for name in ("broker.db", "broker.db-wal", "broker.db-shm")]
    assert store_bytes(tmp_path / "broker.db") == sum(p.stat().st_size for p in files)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("30m", 1800), ("1.5h", 5400), ("2d", 172800)],
)
def test_retention_ages(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize(
    ("text", "count"),
    [("268435456", 2**28), ("512K", 512 * 1024), ("256M", 2**28), ("256MiB", 2**28), ("1G", 2**30)],
)
def test_retention_sizes(text: str, count: int) -> None:
    assert parse_bytes(text) == count


@pytest.mark.parametrize("text", ["", "h", "-5", "0", "1y", "ten"])
def test_a_retention_age_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an age"):
        parse_age(text)


def test_the_policy_in_words() -> None:
    assert retention_text(3600, 256 * 2**20) == "1 h or 256 MiB"
    assert retention_text(1, 512 * 1024) == "1 s or 512 KiB"
