"""A busy, locked or unreachable database: "retry later" (503 with Retry-After), not a bug (500).

One rule for both doors of a service: `POST /` (kit/endpoint.py) and its JSON API routes (the
Flask error handlers below). Transient means the same request can succeed unchanged later:

- SQLite's "database is locked" (SQLITE_BUSY: another connection holds the write lock for
  longer than the engine's wait, `DATABASE_WAIT_SECONDS`) and SQLITE_LOCKED;
- PostgreSQL unreachable or gone: a connection that cannot be made (refused, timed out) or was
  lost (the server closed it, an administrator shut it down: SQLSTATE class 08, 57P01..57P03),
  too many connections or no resources (class 53), a lock not obtained (55P03), a
  serialization failure or a deadlock the server broke (40001, 40P01);
- no pooled connection free within the wait (`sqlalchemy.exc.TimeoutError`).

Everything else keeps its 500: an IntegrityError a route did not expect, a ProgrammingError
("no such table", bad SQL), a DataError are bugs, and retrying them changes nothing.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Response

from kit.api import json_response
from kit.errors import RetryLater

log = logging.getLogger("shop.kit")

#: Seconds a client should wait before retrying: a lock is usually free again within one; a
#: server that went away takes longer to come back.
BUSY_RETRY_AFTER = 1
UNREACHABLE_RETRY_AFTER = 5

_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_POSTGRES_UNREACHABLE_CLASSES = ("08", "53")
_POSTGRES_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03"})
_POSTGRES_BUSY_STATES = frozenset({"55P03", "40001", "40P01"})


def retry_later_for(error: BaseException) -> RetryLater | None:
    """The RetryLater that `error` amounts to when it is the database's transient trouble."""
    if isinstance(error, sa.exc.TimeoutError):
        return RetryLater("no database connection came free in time", BUSY_RETRY_AFTER)
    if isinstance(error, sa.exc.DisconnectionError):
        return RetryLater("the database connection was lost", UNREACHABLE_RETRY_AFTER)
    if not isinstance(error, sa.exc.DBAPIError):
        return None
    original = error.orig
    if _sqlite_busy(original):
        return RetryLater("the database is busy (locked by another writer)", BUSY_RETRY_AFTER)
    if error.connection_invalidated:
        return RetryLater("the database connection was lost", UNREACHABLE_RETRY_AFTER)
    state = getattr(original, "sqlstate", None)
    if state in _POSTGRES_BUSY_STATES:
        return RetryLater("the database is busy (a lock or a conflict)", BUSY_RETRY_AFTER)
    if state in _POSTGRES_UNREACHABLE_STATES or (
        state is not None and state[:2] in _POSTGRES_UNREACHABLE_CLASSES
    ):
        return RetryLater("the database is unavailable", UNREACHABLE_RETRY_AFTER)
    if (
        state is None
        and isinstance(error, sa.exc.OperationalError)
        and type(original).__module__.startswith("psycopg")
    ):
        # psycopg gives no SQLSTATE to what libpq reports itself: a connection that could not
        # be made or broke ("connection refused", "server closed the connection unexpectedly").
        return RetryLater("the database is unreachable", UNREACHABLE_RETRY_AFTER)
    return None


def _sqlite_busy(original: BaseException | None) -> bool:
    # The primary result code (the low byte): SQLITE_BUSY_SNAPSHOT, _TIMEOUT, ... are busy too.
    code = getattr(original, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def retry_later_response(error: RetryLater) -> Response:
    """503 with the kit's JSON error body and, when known, Retry-After (a JSON route)."""
    return json_response(503, error.to_json(), error.headers())


def database_error_response(error: sa.exc.SQLAlchemyError) -> Response:
    """Flask's handler of SQLAlchemy errors in a route: 503 when transient, else Flask's 500."""
    retry = retry_later_for(error)
    if retry is None:
        raise error  # Flask logs it with its traceback and answers 500
    log.warning("%s: %s", retry.reason, cause_of(error), extra={"outcome": "retry", "status": 503})
    return retry_later_response(retry)


def cause_of(error: BaseException) -> str:
    """The driver's first line about `error`, for the log ("database is locked")."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
