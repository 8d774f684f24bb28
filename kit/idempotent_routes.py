"""`@idempotent`: a JSON API route that takes an `Idempotency-Key`, so a retry is safe.

The semantics are those of the IETF httpapi draft "The Idempotency-Key HTTP Header Field"
(kit/request_keys.py keeps the keys). With a key:

- the first request runs the route; its answer (status, headers, JSON body) is stored with the
  key in the route's own transaction (`Service.request_transaction`, which the route's
  `transaction()` joins), so the route's change and the key commit together or not at all;
- a retry with the same key and the same request (path, query and body; the body compared as
  canonical JSON, so the order of members does not matter) gets that answer again, marked
  `Idempotent-Replayed: true`, and the route does not run;
- the same key with another request is refused with 422;
- the same key while its first request is still running: 409 with Retry-After (PostgreSQL;
  on SQLite the retry waits for the first request instead, see `request_keys.claim`);
- keys are scoped by route (method and path template) and kept for IDEMPOTENCY_KEY_HOURS
  (24 by default) after the first request; expired keys are deleted as keyed requests come.

What is stored is what committed: an error the route raises (400, 404, a 409 of its own) rolls
the key back with the change, and a retry with the key is handled afresh. Without a key nothing
changes: the same body posted twice is two requests (the client's choice).

    @routes.post("/orders")
    @idempotent
    def place_order() -> Response: ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response, make_response, request

from kit.api import json_response
from kit.errors import RequestError
from kit.openapi import ERROR, Amendment, Reply, amend
from kit.request_keys import (
    HEADER,
    KEY_PATTERN,
    KeyInProgress,
    KeyReused,
    Stored,
    claim,
    fingerprint,
    parse_key,
    record,
)
from kit.service import current_service

#: Set to "true" on an answer that is the stored answer to an earlier request with the key.
REPLAYED_HEADER = "Idempotent-Replayed"
#: Seconds a client waits before retrying a request whose key is in use.
IN_PROGRESS_RETRY_AFTER = 1

View = TypeVar("View", bound=Callable[..., Any])


def idempotent(view: View) -> View:
    """Make a JSON API route (decorated under its `@routes.post(...)`) take an Idempotency-Key."""

    @functools.wraps(view)
    def keyed(*args: Any, **kwargs: Any) -> Any:
        raw = request.headers.get(HEADER)
        if raw is None:
            return view(*args, **kwargs)
        key = parse_key(raw)
        service = current_service()
        rule = request.url_rule
        scope = f"{request.method} {rule.rule if rule is not None else request.path}"
        target = request.full_path if request.query_string else request.path
        request_print = fingerprint(target, request.get_data(cache=True))
        retention = service.config.idempotency_key_hours * 3600
        with service.request_transaction() as tx:
            try:
                stored = claim(tx.connection, scope, key, request_print, retention)
            except KeyInProgress:
                return _in_progress()
            except KeyReused:
                raise RequestError(
                    422,
                    f"this {HEADER} was used for a different request to {scope} (another body "
                    "or path); a new request needs a new key",
                    field=HEADER,
                ) from None
            if stored is not None:
                return _replay(stored)
            response = make_response(view(*args, **kwargs))
            record(tx.connection, scope, key, _answer(response))
        return response

    amend(keyed, OPENAPI)
    return cast(View, keyed)


def _answer(response: Response) -> Stored:
    headers = [(name, value) for name, value in response.headers if name != "Content-Length"]
    return Stored(response.status_code, headers, response.get_data())


def _replay(stored: Stored) -> Response:
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _in_progress() -> Response:
    error = RequestError(
        409, f"a request with this {HEADER} is still in progress; retry later", field=HEADER
    )
    return json_response(409, error.to_json(), {"Retry-After": str(IN_PROGRESS_RETRY_AFTER)})


OPENAPI = Amendment(
    parameters=[
        {
            "name": HEADER,
            "in": "header",
            "required": False,
            "description": (
                "Makes a retry safe: a retry with the same key and request gets the first "
                f"answer again (with `{REPLAYED_HEADER}: true`) and changes nothing. A "
                'Structured Fields String (`"..."`) or a bare token, 1 to 255 printable ASCII '
                "characters; kept for IDEMPOTENCY_KEY_HOURS (24 by default)."
            ),
            "schema": {"type": "string", "pattern": KEY_PATTERN},
        }
    ],
    responses={
        400: Reply(ERROR.schema, f"an invalid request (the body, or the {HEADER} header)"),
        409: Reply(
            ERROR.schema,
            f"a request with this {HEADER} is still in progress",
            headers={"Retry-After": "seconds to wait before retrying"},
        ),
        422: Reply(ERROR.schema, f"this {HEADER} was used for a different request"),
    },
    success_headers={
        REPLAYED_HEADER: (
            f"`true` when this is the stored answer to an earlier request with the same {HEADER}"
        )
    },
)
