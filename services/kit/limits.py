"""The size limits every edge enforces (broker ingress, kit receiving, the JSON APIs), stated once.

docs/broker.md and docs/services.md quote these numbers; error bodies name them.
"""

from __future__ import annotations

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
