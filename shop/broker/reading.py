"""A connection to the broker's database for a reader (the journal's, the traces'): its own, not
the writer's, opened per question and closed after it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Seconds a reader waits for a lock (WAL readers rarely wait: a checkpoint's end, a new file).
READER_TIMEOUT = 5


@contextmanager
def reader(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection to `database`, closed when the block ends."""
    connection = sqlite3.connect(database, timeout=READER_TIMEOUT)
    try:
        yield connection
    finally:
        connection.close()
