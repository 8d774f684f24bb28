"""The JSON APIs of the order, customer and inventory services as fuzz targets.

What docs/services.md allows: 201 (with `Location`) or 200 for what is valid, 400 naming the
culprit in `field` (the JSON path; for a missing or unknown member, its name), 404, 409 for a
registered email, 415 for a body that is not JSON, and the limits' 413/414/431. Every error is
a short JSON object (it must not echo a large input back), every success at most 64 KiB.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field, replace

from tests.fuzz.api_requests import KNOWN
from tests.fuzz.http_requests import RawRequest
from tests.fuzz.invariants import Context, Expectation, error_document
from tests.support.raw_http import Answer
from wire.strings import QUOTE_CHARACTERS

#: How many created resources each API remembers for later GETs.
KNOWN_KEPT = 500


@dataclass
class JsonApi:
    """One service's API: expectations per request, and what it created so far."""

    name: str
    prefix: bytes  # where created resources live: b"/orders/", b"/users/", b"/stock/"
    known: list[bytes] = field(default_factory=list)

    def start_example(self) -> None:
        return None

    def prepare(self, request: RawRequest) -> RawRequest:
        """Put the path of something created earlier into a GET of `{known}`."""
        if KNOWN not in request.target:
            return request
        if not self.known:
            target = request.target.replace(KNOWN, b"never-created")
            meta = {**request.meta, "known": False, "statuses": frozenset({404})}
            return replace(request, target=target, meta=meta)
        chosen = self.known[zlib.crc32(request.wire()) % len(self.known)]
        return replace(request, target=chosen)

    def expect(self, request: RawRequest) -> Expectation:
        statuses = request.meta.get("statuses", frozenset())
        assert isinstance(statuses, frozenset)
        return Expectation(statuses, notes=request.label)

    def check(self, request: RawRequest, answer: Answer, context: Context) -> None:
        if answer.status == 400:
            self._check_field(request, answer, context)
        if answer.status == 201:
            self._check_created(request, answer, context)
        if answer.status == 200 and request.method == b"GET" and request.meta.get("known"):
            self._check_shown(request, answer, context)

    def _check_field(self, request: RawRequest, answer: Answer, context: Context) -> None:
        expected = request.meta.get("field")
        regular = request.exact and request.within_limits and not request.odd_head
        if expected is None or not regular or not request.valid_version:
            return
        document = error_document(answer) or {}
        if isinstance(expected, str) and len(expected) > QUOTE_CHARACTERS:
            expected = f"{expected[:QUOTE_CHARACTERS]}..."  # error bodies cut what they quote
        assert document.get("field") == expected, (
            f"the 400 does not name the field at fault ({expected!r})\n{context}"
        )

    def _check_created(self, request: RawRequest, answer: Answer, context: Context) -> None:
        location = answer.header("location") or b""
        assert location.startswith(self.prefix), (
            f"a 201 without a Location under {self.prefix!r}\n{context}"
        )
        assert answer.media_type == "application/json", f"a 201 that is not JSON\n{context}"
        document = json.loads(answer.body)
        assert isinstance(document, dict), f"a 201 whose body is not an object\n{context}"
        self.known.append(location)
        del self.known[:-KNOWN_KEPT]

    def _check_shown(self, request: RawRequest, answer: Answer, context: Context) -> None:
        assert answer.media_type == "application/json", f"a 200 that is not JSON\n{context}"
        document = json.loads(answer.body)
        key = "sku" if self.prefix == b"/stock/" else "id"
        shown = request.target[len(self.prefix) :].decode("utf-8", "replace")
        assert isinstance(document, dict) and document.get(key) == shown, (
            f"GET of a created resource shows another one\n{context}"
        )
