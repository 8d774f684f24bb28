"""The size limits every edge enforces (broker ingress, kit receiving, the JSON APIs), stated once.

docs/broker.md and docs/services.md quote these numbers; error bodies name them.
"""

from __future__ import annotations

from typing import NamedTuple

#: One request body: an event (binary or structured), a batch, or a JSON API call. Knative's
#: Kafka broker caps an event at 1 MiB; CloudEvents asks intermediaries to forward 64 KiB.
MAX_BODY_BYTES = 1024 * 1024
#: The request target (path and query); longer is a 414.
MAX_URL_BYTES = 8 * 1024
#: All header names and values of one request together; more is a 431.
MAX_HEADER_BYTES = 64 * 1024
#: Header fields of one request; more is a 431.
MAX_HEADER_COUNT = 256
#: Nesting of arrays and objects in any JSON document read from a client (event data included).
MAX_JSON_DEPTH = 64
#: A client has this long to send a whole request once it started one (the MT broker's read
#: timeout is 10 s); then it gets a 408 and the connection is closed.
REQUEST_READ_SECONDS = 10.0


class Breach(NamedTuple):
    """A limit a request passed: the status that refuses it, what the error says, the limit."""

    status: int
    message: str
    limit: int


TARGET_TOO_LONG = Breach(414, f"the request target exceeds {MAX_URL_BYTES} bytes", MAX_URL_BYTES)
HEADERS_TOO_LARGE = Breach(
    431, f"the request's headers exceed {MAX_HEADER_BYTES} bytes", MAX_HEADER_BYTES
)
TOO_MANY_HEADERS = Breach(
    431, f"the request has more than {MAX_HEADER_COUNT} headers", MAX_HEADER_COUNT
)
TRAILERS_TOO_LARGE = Breach(
    431, f"the request's trailers exceed {MAX_HEADER_BYTES} bytes", MAX_HEADER_BYTES
)


def body_too_large(limit: int = MAX_BODY_BYTES) -> Breach:
    """The refusal of a body over `limit` bytes (a service may set a lower one)."""
    return Breach(413, f"the body exceeds {limit} bytes", limit)
