"""The two receivers of CloudEvents under attack: the broker's ingress and a kit sink (viewer).

For each: the requests to send (events in every mode, to the right and wrong paths, with probes
whose answers are unmistakable in between: OPTIONS, GET /healthz), what its documentation allows
as the answer (docs/broker.md "HTTP endpoints" and "Knative's semantics"; docs/services.md for
the kit's `POST /`), and the checks of an accepted event: every 202 is a valid CloudEvent to the
independent oracle (tests/support/cloudevents_oracle.py), and, for the broker, is in the journal
(`GET /_shop/events`) with the attributes that were sent.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from hypothesis import strategies as st

from tests.fuzz.choices import Choices
from tests.fuzz.event_requests import event_request
from tests.fuzz.http_requests import Framing, RawRequest, versioned
from tests.fuzz.invariants import Context, Expectation, error_document
from tests.support.cloudevents_oracle import Verdict, comparable, judge_request
from tests.support.raw_http import Answer
from wire.limits import MAX_JSON_DEPTH

#: Attributes the broker sets itself on the way in (docs/broker.md, admission.py's rules).
BROKER_STAMPS = ("knativearrivaltime", "knativebrokerttl")
ALLOW = b"POST, OPTIONS"
STANDARD_METHODS = (b"GET", b"PUT", b"DELETE", b"HEAD", b"PATCH")
ODD_METHODS = (b"BREW", b"post", b"P\x00ST", b"POST\t")


def probe(method: bytes, target: bytes, kind: str) -> RawRequest:
    return RawRequest(
        method,
        target,
        ((b"Host", b"127.0.0.1"),),
        framing=Framing.NONE,
        label=kind,
        meta={"kind": kind},
    )


def _path(target: bytes) -> bytes:
    if target.startswith(b"http://"):
        target = b"/" + target.split(b"/", 3)[-1]
    return target.split(b"?", 1)[0]


# -- the broker's ingress ------------------------------------------------------------------------

GOOD_PATHS = (
    (b"/shop/default", True),
    (b"/shop/default/", True),
    (b"/shop/default?trace=1", True),
    (b"http://127.0.0.1/shop/default", False),
)
UNKNOWN_PATHS = (b"/shop/nope", b"/other/default", b"//default")
# Knative's ingress trims one trailing slash, then wants exactly /<namespace>/<broker>.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
BAD_PATHS = (
    b"/shop",
    b"/shop/",
    b"/a/b/c",
    b"/shop/default//",
    b"/shop%2Fdefault",
    b"*",
    b"/shop/default/x",
)


BROKER_KINDS = ("event",) * 16 + ("options", "healthz", "method")
OPTIONS_TARGETS = (b"/shop/default", b"/", b"*", b"/anything/at/all")
WHERE = ("good",) * 12 + ("unknown", "root", "bad")


@st.composite
def broker_requests(draw: st.DrawFn) -> RawRequest:
    """One request to the broker's port: mostly events for the ingress, some probes."""
    choices = Choices(draw)
    kind = choices.pick(BROKER_KINDS)
    if kind == "options":
        return versioned(choices, probe(b"OPTIONS", choices.detail(OPTIONS_TARGETS), kind))
    if kind == "healthz":
        return probe(b"GET", b"/healthz", kind)
    if kind == "method":
        method = choices.pick(STANDARD_METHODS + ODD_METHODS)
        request = event_request(choices, method=method, target=b"/shop/default", batches=False)
        return replace(request, label=f"method {method!r}", meta={**request.meta, "kind": kind})
    where = choices.pick(WHERE)
    plain_path = False
    if where == "good":
        target, plain_path = choices.detail(GOOD_PATHS)
    elif where == "unknown":
        target = choices.detail(UNKNOWN_PATHS)
    elif where == "root":
        target = b"/"
    else:
        target = choices.detail(BAD_PATHS)
    request = event_request(choices, method=b"POST", target=target, batches=True)
    meta = {**request.meta, "kind": "event", "where": where}
    meta["plain"] = bool(meta.get("plain")) and plain_path
    return replace(request, meta=meta, label=f"{request.label} to {target[:40]!r}")


def plainly_valid(request: RawRequest, verdict: Verdict) -> bool:
    """A valid event in its most ordinary form, sent regularly: no excuse to refuse it."""
    return (
        bool(request.meta.get("plain"))
        and verdict.valid
        and verdict.judged
        and request.exact
        and request.within_limits
        and request.valid_version
    )


@dataclass
class EventTarget:
    """The expectations of a CloudEvents receiver, and the events it accepted in one example."""

    name: str
    takes_batches: bool = True
    accepted: list[tuple[RawRequest, Verdict]] = field(default_factory=list)
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    modes: Counter[str] = field(default_factory=Counter)

    def verdict(self, request: RawRequest) -> Verdict:
        key = id(request)
        if key not in self.verdicts:
            self.verdicts[key] = judge_request(request.all_headers(), request.body)
        return self.verdicts[key]

    def prepare(self, request: RawRequest) -> RawRequest:
        return request

    def start_example(self) -> None:
        self.accepted = []
        self.verdicts = {}

    def expect(self, request: RawRequest) -> Expectation:
        raise NotImplementedError

    def check(self, request: RawRequest, answer: Answer, context: Context) -> None:
        kind = request.meta.get("kind")
        if kind == "options":
            _check_handshake(answer, context)
        elif kind == "healthz":
            document = error_document(answer)
            assert document is not None and document.get("status") == "ok", (
                f"GET /healthz did not answer its own document (answers out of order?)\n{context}"
            )
        if answer.status == 202:
            self._check_accepted(request, answer, context)
        elif answer.status == 400:
            self._check_names_attribute(request, answer, context)

    def _check_accepted(self, request: RawRequest, answer: Answer, context: Context) -> None:
        verdict = self.verdict(request)
        assert request.method == b"POST", f"202 for a {request.method!r} request\n{context}"
        assert answer.body == b"", f"a 202 with a body\n{context}"
        # One line per mode: an invalid batch accepted is not the same defect as a bad header.
        if verdict.mode == "binary":
            assert verdict.valid, (
                f"202 for an invalid binary-mode event: {verdict.problem}\n{context}"
            )
        elif verdict.mode == "structured":
            assert verdict.valid, (
                f"202 for an invalid structured-mode event: {verdict.problem}\n{context}"
            )
        elif verdict.mode == "batch":
            assert verdict.valid, f"202 for an invalid batch: {verdict.problem}\n{context}"
        else:
            raise AssertionError(
                f"202 for a request that is no event: {verdict.problem}\n{context}"
            )
        self.modes[verdict.mode] += 1
        self.accepted.append((request, verdict))

    def _check_names_attribute(self, request: RawRequest, answer: Answer, context: Context) -> None:
        """A 400 for one attribute's fault says which (docs/broker.md, the kit's InvalidEvent)."""
        verdict = self.verdict(request)
        aimed = request.meta.get("mutated")
        if verdict.valid or verdict.attribute is None or aimed != verdict.attribute:
            return
        if verdict.mode == "batch" and not self.takes_batches:
            return  # refused for being a batch, before any attribute is looked at
        if not request.exact or request.odd_head or not request.within_limits:
            return
        if request.meta.get("where") in ("bad", "root") or request.meta.get("kind") == "method":
            return  # refused for its path or method, before any attribute is looked at
        if request.body.count(b"[") + request.body.count(b"{") > MAX_JSON_DEPTH:
            return  # may be refused for its nesting (a limit) before its attributes are read
        document = error_document(answer) or {}
        named = document.get("attribute")
        if (
            isinstance(named, str)
            and named != verdict.attribute
            and named.encode() in request.wire()
        ):
            return  # the event has another fault too, and the server found that one first
        if named is None and _SURROGATE_ESCAPE.search(request.body):
            return  # a lone surrogate anywhere (even in data) may be refused first
        assert named == verdict.attribute, (
            f"the 400 does not name the attribute at fault ({verdict.attribute!r}: "
            f"{verdict.problem})\n{context}"
        )


def _check_handshake(answer: Answer, context: Context) -> None:
    if answer.status != 200:
        return
    for name in ("webhook-allowed-origin", "webhook-allowed-rate"):
        assert answer.header(name) == b"*", f"OPTIONS answered without {name}: *\n{context}"


@dataclass
class BrokerIngress(EventTarget):
    """docs/broker.md: the ingress's checks in Knative's order, and the journal."""

    journal_url: str = ""
    mark: int = 0

    def expect(self, request: RawRequest) -> Expectation:
        kind = request.meta.get("kind")
        if kind == "options":
            return Expectation(frozenset({200}), notes="OPTIONS handshake")
        if kind == "healthz":
            return Expectation(frozenset({200}), notes="GET /healthz")
        if kind == "method":
            standard = request.method in STANDARD_METHODS
            return Expectation(frozenset({405} if standard else {400, 405}), notes="not POST")
        verdict = self.verdict(request)
        where = request.meta.get("where")
        if where == "root":
            return Expectation(frozenset({404}), notes="POST /")
        if where == "bad":
            return Expectation(frozenset({400}), notes="not /<ns>/<broker>")
        if not verdict.valid or verdict.mode == "batch":
            return Expectation(frozenset({400}), notes=f"not an event: {verdict.problem}")
        if where == "unknown":
            # An event the oracle does not judge (specversion 0.3) may be refused first.
            refusable = frozenset() if verdict.judged else frozenset({400})
            return Expectation(frozenset({404}) | refusable, notes="no such broker")
        if plainly_valid(request, verdict):
            return Expectation(frozenset({202}), must_accept=True, notes="a plainly valid event")
        return Expectation(frozenset({202, 400}), notes="a valid event in an unusual form")

    def check(self, request: RawRequest, answer: Answer, context: Context) -> None:
        super().check(request, answer, context)
        if request.meta.get("kind") in ("event", "method", "options") and request.exact:
            assert answer.header("allow") == ALLOW, (
                f"an ingress answer without Allow: POST, OPTIONS\n{context}"
            )

    def journal_since(self, mark: int) -> list[dict[str, Any]]:
        """Every event the broker stored after `mark` (paged through 1000 at a time)."""
        events: list[dict[str, Any]] = []
        while True:
            page = requests.get(
                f"{self.journal_url}/_shop/events",
                params={"after": mark, "limit": 1000},
                timeout=10,
            ).json()
            events.extend(page["events"])
            if len(page["events"]) < 1000:
                return events
            mark = page["next_after"]

    def start(self) -> None:
        self.mark = 0
        self.start_example()

    def start_example(self) -> None:
        """Skip to the journal's end, so that an example looks only at its own events (also
        after an example that failed before its journal was checked)."""
        super().start_example()
        events = self.journal_since(self.mark)
        if events:
            self.mark = events[-1]["seq"]

    def finish_example(self, complete: bool) -> None:
        """Every 202 is in the journal as sent; with `complete`, nothing else was stored."""
        stored = self.journal_since(self.mark)
        if stored:
            self.mark = stored[-1]["seq"]
        fuzzed = [event for event in stored if not str(event["source"]).startswith("/shop/")]
        remaining = [comparable(event["attributes"], BROKER_STAMPS) for event in fuzzed]
        for request, verdict in self.accepted:
            sent = comparable(verdict.events[0].attributes, BROKER_STAMPS)
            assert sent in remaining, (
                "a 202'd event is not in the journal with the attributes sent\n"
                f"  sent: {sent!r}\n  stored since the example began: {remaining!r}\n"
                f"  request: {request.describe()}"
            )
            remaining.remove(sent)
        if complete:
            assert not remaining, (
                f"the journal holds events that were not answered 202: {remaining!r}"
            )


# -- a kit sink (the viewer) ---------------------------------------------------------------------

SINK_KINDS = ("event",) * 16 + ("options", "healthz", "method", "elsewhere")
SINK_PATHS = ((b"/", True),) * 8 + ((b"/?x=1", True), (b"/?", False))
HEALTH_PATHS = (b"/healthz", b"/healthz?x=1")
SINK_METHODS = (b"PUT", b"DELETE", b"PATCH")
NO_ROUTE = (b"/nope", b"/api/none")


@st.composite
def sink_requests(draw: st.DrawFn) -> RawRequest:
    """One request to a kit service's port: mostly events for `POST /`, some probes."""
    choices = Choices(draw)
    kind = choices.pick(SINK_KINDS)
    if kind == "options":
        return versioned(choices, probe(b"OPTIONS", b"/", kind))
    if kind == "healthz":
        return probe(b"GET", choices.detail(HEALTH_PATHS), kind)
    if kind in ("method", "elsewhere"):
        method = choices.detail(SINK_METHODS) if kind == "method" else b"POST"
        target = b"/" if kind == "method" else choices.detail(NO_ROUTE)
        request = event_request(choices, method=method, target=target, batches=False)
        return replace(request, label=f"{kind} {method!r}", meta={**request.meta, "kind": kind})
    target, plain_path = choices.pick(SINK_PATHS)
    request = event_request(choices, method=b"POST", target=target, batches=True)
    meta = {**request.meta, "kind": "event"}
    meta["plain"] = bool(meta.get("plain")) and plain_path
    return replace(request, meta=meta)


@dataclass
class KitSink(EventTarget):
    """docs/services.md: `POST /` answers 202 handled, 400 bad event, 415 other formats."""

    def expect(self, request: RawRequest) -> Expectation:
        kind = request.meta.get("kind")
        if kind == "options":
            return Expectation(frozenset({200, 204}), notes="OPTIONS /")
        if kind == "healthz":
            return Expectation(frozenset({200}), notes="GET /healthz")
        if kind == "method":
            return Expectation(frozenset({405}), notes="not POST")
        if kind == "elsewhere":
            return Expectation(frozenset({404, 405}), notes="no route")
        verdict = self.verdict(request)
        if verdict.mode == "unreadable":
            return Expectation(frozenset({400, 415}), notes=f"not readable: {verdict.problem}")
        if not verdict.valid:
            return Expectation(frozenset({400}), notes=f"invalid: {verdict.problem}")
        if plainly_valid(request, verdict):
            return Expectation(frozenset({202}), must_accept=True, notes="a plainly valid event")
        return Expectation(frozenset({202, 400}), notes="a valid event in an unusual form")
