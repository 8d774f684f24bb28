"""Idempotency keys of HTTP requests: each key's request and first answer, kept for a while.

The storage and the rules of the IETF httpapi draft "The Idempotency-Key HTTP Header Field";
kit/idempotent_routes.py puts them on a route. A key is a Structured Fields String
(`Idempotency-Key: "8e03978e-40d5-43e8"`; a bare token is taken too) of 1 to 255 printable
ASCII characters, scoped by route (method and path template: `POST /orders`). Its row is
claimed and its answer recorded in the transaction of the route's business change, so an
order and its key commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass

import sqlalchemy as sa

from kit.database import KIT_METADATA, insert_ignoring_duplicates
from kit.errors import RequestError
from wire.json_input import JsonInputError, load_json

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: Expired keys deleted per keyed request, at most (the rest go with the next requests).
PRUNE_BATCH = 100

request_keys = sa.Table(
    "kit_request_keys",
    KIT_METADATA,
    sa.Column("scope", sa.String(512), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # NULL between the claim and the record in the first request's one transaction: no other
    # transaction ever sees it so.
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# RFC 9651 sf-string: printable ASCII, `"` and `\` escaped; the lenient bare form is a token
# (sf-token's characters, whatever the first one is: keys are often UUIDs).
_SF_STRING = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_BARE_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~:/-]+")
_ESCAPE = re.compile(r"\\(.)")
#: The header's values as a JSON Schema pattern (OpenAPI): either form, 1 to 255 characters.
KEY_PATTERN = r'^(?:"(?:[ !#-\[\]-~]|\\["\\]){1,255}"' + r"|[A-Za-z0-9!#$%&'*+.^_`|~:/-]{1,255})$"


class KeyInProgress(Exception):
    """Another transaction holds the key: its first request has not finished."""


class KeyReused(Exception):
    """The key's first request was a different request."""


@dataclass(frozen=True)
class Stored:
    """The answer the key's first request got: what a retry gets again."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_key(raw: str) -> str:
    """The key an `Idempotency-Key` header value names, or a RequestError (400) saying why not."""
    value = raw.strip(" \t")
    quoted = _SF_STRING.fullmatch(value)
    if quoted is not None:
        key = _ESCAPE.sub(r"\1", quoted[1])
    elif _BARE_TOKEN.fullmatch(value):
        key = value
    else:
        raise _bad_key(
            "must be a quoted string of printable ASCII characters (or a bare token of letters, "
            "digits and -._~:/!#$%&'*+^`|)"
        )
    if not key:
        raise _bad_key("must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _bad_key(f"must be at most {MAX_KEY_LENGTH} characters long")
    return key


def _bad_key(problem: str) -> RequestError:
    return RequestError(400, f"the {HEADER} header {problem}", field=HEADER, limit=MAX_KEY_LENGTH)


def fingerprint(target: str, body: bytes) -> str:
    """What makes two requests with one key the same: the target (path and query) and the body,
    as canonical JSON (members sorted, no spaces) when it is JSON."""
    try:
        canonical = json.dumps(
            load_json(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except JsonInputError:
        canonical = body  # not JSON: the route refuses it, and a retry compares bytes
    digest = hashlib.sha256(target.encode())
    digest.update(b"\0")
    digest.update(canonical)
    return digest.hexdigest()


def claim(
    connection: sa.Connection, scope: str, key: str, request_print: str, retention: float
) -> Stored | None:
    """Take the key in this transaction (None), or return the answer its first request got.

    Raises KeyReused when the key's first request had another fingerprint, KeyInProgress when
    that request is still running.

    PostgreSQL: a transaction-scoped advisory lock on (scope, key) marks the key as in use while
    its first request's transaction is open; a second request that cannot take it at once gets
    KeyInProgress (409), and once the first has committed the key's row is there to replay. The
    primary key is what guarantees one row per key: without the lock, a second request would
    wait for the first one's insert, then replay.

    SQLite: every transaction of the service takes the write lock first (BEGIN IMMEDIATE), so
    a second request waits before it gets here until the first has committed, then replays its
    answer; it never sees a key in progress, and there is no 409. A wait longer than
    DATABASE_WAIT_SECONDS is answered 503 with Retry-After instead (kit/unavailable.py), which
    asks the client for the same thing: the same request again, later.
    """
    if (
        connection.dialect.name == "postgresql"
        and not connection.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": _lock_id(scope, key)}
        ).scalar_one()
    ):
        raise KeyInProgress
    now = time.time()
    # This key's own expired row first: the bounded batch below may not reach it.
    connection.execute(
        request_keys.delete().where(
            request_keys.c.scope == scope,
            request_keys.c.key == key,
            request_keys.c.expires_at < now,
        )
    )
    prune(connection, now)
    row = {
        "scope": scope,
        "key": key,
        "fingerprint": request_print,
        "created_at": now,
        "expires_at": now + retention,
    }
    if insert_ignoring_duplicates(connection, request_keys, row):
        return None
    found = connection.execute(
        sa.select(
            request_keys.c.fingerprint,
            request_keys.c.status,
            request_keys.c.headers,
            request_keys.c.body,
        ).where(request_keys.c.scope == scope, request_keys.c.key == key)
    ).one()
    if found.fingerprint != request_print:
        raise KeyReused
    # Claimed and recorded in one transaction: a committed row has its answer.
    return Stored(found.status, [(n, v) for n, v in json.loads(found.headers)], found.body)


def record(connection: sa.Connection, scope: str, key: str, answer: Stored) -> None:
    """Store the answer of the key's first request, in the transaction that claimed the key."""
    connection.execute(
        request_keys.update()
        .where(request_keys.c.scope == scope, request_keys.c.key == key)
        .values(status=answer.status, headers=json.dumps(answer.headers), body=answer.body)
    )


def prune(connection: sa.Connection, now: float) -> None:
    """Delete up to PRUNE_BATCH expired keys; rows another transaction is deleting are skipped."""
    expired = (
        sa.select(request_keys.c.scope, request_keys.c.key)
        .where(request_keys.c.expires_at < now)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer and no FOR UPDATE
    )
    connection.execute(
        request_keys.delete().where(
            sa.tuple_(request_keys.c.scope, request_keys.c.key).in_(expired)
        )
    )


def _lock_id(scope: str, key: str) -> int:
    """A signed 64-bit advisory lock id for (scope, key); a collision only costs a 409."""
    digest = hashlib.sha256(f"{scope}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
