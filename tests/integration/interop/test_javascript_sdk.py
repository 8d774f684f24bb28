"""A round trip through our broker with a third-party CloudEvents implementation.

The JavaScript SDK (npm `cloudevents` 10.0.0, `tests/interop/js`) is both ends: `producer.mjs`
builds each event with the SDK's `CloudEvent` and POSTs it in binary or structured mode to the
real broker process; a Trigger delivers it to `subscriber.mjs`, which decodes it with the SDK's
`HTTP.toEvent` and writes what it got as a JSON line. What arrives must be what was sent, except
for what Knative's broker itself adds.

Set up with `make tools` (it runs `npm ci --prefix tests/interop/js`; CI does, and sets
SHOP_STRICT=1 so that a missing SDK fails instead of skipping).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, require
from tests.integration.broker import conftest as broker_fixtures
from tests.integration.broker.conftest import StartBroker
from tests.support.broker_process import broker_manifest, trigger_manifest
from tests.support.processes import wait_for

JS_DIR = REPO_ROOT / "tests" / "interop" / "js"
SDK_DIR = JS_DIR / "node_modules" / "cloudevents"

# The broker tests' fixture: the real `shop broker` process on the given manifests, stopped after
# the test (tests/integration/broker/conftest.py).
start_broker = broker_fixtures.start_broker

# What Knative's broker adds to an event on its way to a subscriber, and so may be in what the
# subscriber gets but not in what the producer sent (../shared/docs/knative-semantics.md, section
# 1; docs/broker.md): the ingress stamps `knativearrivaltime` (RFC 3339 UTC) on every event. The
# hop counter `knativebrokerttl` is set by the ingress too, but removed before a subscriber is
# called, so it is not allowed here. Nothing else: other HTTP headers (`prefer`, `kn-namespace`)
# are not attributes.
KNATIVE_ADDITIONS = frozenset({"knativearrivaltime"})

# The SDK writes `time` as JavaScript's Date.toISOString() (milliseconds, `Z`), and its decoder
# gives it back in that form: a time given in that form is sent as given. (The SDK also sets `time`
# on every event it builds, so an event without `time` cannot be produced with it.)
TIME = "2024-05-06T07:08:09.123Z"
SOURCE = "/interop/javascript-sdk"
DATASCHEMA = "https://schemas.example.com/interop/v1.json"
# The SDK's HTTP.binary() always sets Content-Type, to this when the event has no
# datacontenttype; by the HTTP binding (binary mode) Content-Type *is* datacontenttype.
SDK_DEFAULT_CONTENT_TYPE = "application/json; charset=utf-8"

EXTENSIONS: dict[str, str | int | bool] = {
    "region": "eu-west-1",
    "zip": "01234",  # a string that looks like an integer stays a string
    "count": 42,
    "negative": -7,
    "maxint": 2147483647,  # the top of the CloudEvents Integer range (int32)
    "flag": True,
    "off": False,
}
TEXT = "grüße aus dem Test\nzweite Zeile\ttab"
JSON_DATA: dict[str, Any] = {
    "order": "o-1",
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    "total": 12.5,
    "note": "prix : 12,50 €",
    "gift": False,
    "coupon": None,
}
# Not UTF-8 (lone continuation bytes, an overlong sequence, an encoded surrogate) and NULs.
BINARY = b"\x00\xff\xfe\x80binary\x00\xc0\xaf\xed\xa0\x80\x00\x01\x02\x7f\x00"

MODES = ("binary", "structured")
# kind -> (datacontenttype, data spec for producer.mjs)
PAYLOADS: dict[str, tuple[str | None, dict[str, Any] | None]] = {
    "text": ("text/plain", {"kind": "text", "value": TEXT}),
    "json": ("application/json", {"kind": "json", "value": JSON_DATA}),
    "binary": (
        "application/octet-stream",
        {"kind": "binary", "base64": base64.b64encode(BINARY).decode()},
    ),
    "none": (None, None),
}
BASE64_MARKER = "$base64"  # how subscriber.mjs writes Buffer/Uint8Array data


@dataclass(frozen=True)
class Sent:
    """One event given to producer.mjs."""

    mode: str
    attributes: dict[str, str | int | bool]
    data: dict[str, Any] | None

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    def spec(self) -> dict[str, Any]:
        return {"mode": self.mode, "attributes": self.attributes, "data": self.data}


def events_to_send() -> list[Sent]:
    """Every payload kind in both modes with every optional attribute, and a bare event each."""
    events = []
    for mode in MODES:
        for kind, (content_type, data) in PAYLOADS.items():
            attributes: dict[str, str | int | bool] = {
                "specversion": "1.0",
                "id": f"js-{mode}-{kind}",
                "source": SOURCE,
                "type": f"com.example.interop.{kind}",
                "time": TIME,
                "subject": f"order/o-1/{kind}",
                "dataschema": DATASCHEMA,
                **EXTENSIONS,
            }
            if content_type is not None:
                attributes["datacontenttype"] = content_type
            events.append(Sent(mode, attributes, data))
        bare = {"id": f"js-{mode}-bare", "source": SOURCE, "type": "com.example.interop.bare"}
        events.append(Sent(mode, {**bare, "time": TIME}, None))
    return events


def canonical_string(value: str | int | bool) -> str:
    """An attribute value in the CloudEvents canonical string encoding (spec, Type System)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expected_attributes(sent: Sent) -> dict[str, str]:
    """What the subscriber's SDK must decode from the delivery of `sent`.

    The broker delivers in binary mode (a Trigger without `delivery.format`, as Knative), where
    every attribute travels as a header string, and the SDK's binary decoder keeps header values
    as strings: an Integer or Boolean extension arrives as its canonical string ("42", "true").
    (The SDK also sends them as such strings itself in binary mode; only a structured-mode
    producer sends them as JSON numbers and booleans.) That is the only conversion allowed.
    """
    expected = {name: canonical_string(value) for name, value in sent.attributes.items()}
    expected.setdefault("specversion", "1.0")
    if sent.mode == "binary" and "datacontenttype" not in expected:
        expected["datacontenttype"] = SDK_DEFAULT_CONTENT_TYPE
    return expected


def received_data(line: dict[str, Any], datacontenttype: str | None) -> Any:
    """The data the subscriber got, as bytes (binary), text, a JSON value, or None (no data)."""
    if "data" not in line:
        return None
    data = line["data"]
    # The subscriber gives the SDK a binary-mode body as a Buffer, which the SDK hands on as is.
    assert isinstance(data, dict) and set(data) == {BASE64_MARKER}, data
    raw = base64.b64decode(data[BASE64_MARKER], validate=True)
    if datacontenttype == "application/json":
        return json.loads(raw)  # the broker may lay JSON out anew (structured in, binary out)
    if datacontenttype == "text/plain":
        return raw.decode("utf-8")
    return raw


def expected_data(sent: Sent) -> Any:
    if sent.data is None:
        return None
    if sent.data["kind"] == "binary":
        return base64.b64decode(sent.data["base64"])
    return sent.data["value"]


def node() -> str:
    path = shutil.which("node")
    require(path is not None, "node is not installed (node 20 runs tests/interop/js)")
    assert path is not None
    return path


@pytest.fixture
def javascript_sdk() -> str:
    """The node binary, once the SDK is installed (skipped, or failed under SHOP_STRICT=1)."""
    require(
        SDK_DIR.is_dir(),
        f"{SDK_DIR.relative_to(REPO_ROOT)} is missing: run `make tools` (needs npm)",
    )
    return node()


@dataclass
class JsSubscriber:
    url: str
    out: Path
    process: subprocess.Popen[str]

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]


@pytest.fixture
def js_subscriber(javascript_sdk: str, tmp_path: Path) -> Iterator[JsSubscriber]:
    """subscriber.mjs on a free port; its port is the first line it prints."""
    out = tmp_path / "received.jsonl"
    with (tmp_path / "subscriber.log").open("w") as log:
        process = subprocess.Popen(
            [javascript_sdk, str(JS_DIR / "subscriber.mjs"), "0", str(out)],
            cwd=JS_DIR,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        log_text = (tmp_path / "subscriber.log").read_text
        assert port.isdigit(), f"subscriber.mjs did not start:\n{log_text()}"
        yield JsSubscriber(f"http://127.0.0.1:{port}", out, process)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def produce(javascript_sdk: str, url: str, events: list[Sent]) -> list[dict[str, Any]]:
    """Send `events` with producer.mjs; its line per event."""
    result = subprocess.run(
        [javascript_sdk, str(JS_DIR / "producer.mjs"), url],
        input=json.dumps([event.spec() for event in events]),
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"producer.mjs failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_events_from_the_javascript_sdk_reach_a_javascript_sdk_subscriber_unchanged(
    javascript_sdk: str, js_subscriber: JsSubscriber, start_broker: StartBroker
) -> None:
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest("javascript-sdk", {"uri": f"{js_subscriber.url}/events"}),
        ]
    )
    events = events_to_send()
    started = datetime.now(UTC)

    answers = produce(javascript_sdk, broker.ingress(), events)

    assert [(a["id"], a["mode"], a["status"]) for a in answers] == [
        (e.id, e.mode, 202) for e in events
    ], answers
    by_id = {event.id: event for event in events}

    def everything_arrived() -> list[dict[str, Any]] | None:
        lines = js_subscriber.lines()
        errors = [line for line in lines if "error" in line]
        assert not errors, f"the SDK could not decode a delivery: {errors}"
        arrived = {line["attributes"]["id"] for line in lines}
        return lines if arrived >= set(by_id) else None

    lines = wait_for(everything_arrived, timeout=20, what="every event at subscriber.mjs")
    finished = datetime.now(UTC)

    assert sorted(line["attributes"]["id"] for line in lines) == sorted(by_id)  # once each
    for line in lines:
        sent = by_id[line["attributes"]["id"]]
        assert line["path"] == "/events"
        expected = expected_attributes(sent)
        attributes = dict(line["attributes"])
        added = {name: attributes.pop(name) for name in set(attributes) - set(expected)}
        assert set(added) <= KNATIVE_ADDITIONS, f"{sent.id}: unexpected attributes {added}"
        assert attributes == expected, sent.id
        # The SDK's decoder replaces a `time` it cannot parse with the current time: check the
        # header itself as well (the same instant; RFC 3339 allows other layouts of it).
        assert _instant(line["headers"]["ce-time"]) == _instant(TIME), sent.id
        if "knativearrivaltime" in added:
            arrival = _instant(added["knativearrivaltime"])
            assert arrival.utcoffset() is not None, added
            assert started.replace(microsecond=0) <= arrival <= finished, added
        assert received_data(line, attributes.get("datacontenttype")) == expected_data(sent), (
            sent.id
        )


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_sdk_sends_what_the_round_trip_expects_of_it(
    javascript_sdk: str, js_subscriber: JsSubscriber
) -> None:
    """The SDK's own wire form, producer to subscriber without the broker: what the round trip
    above takes as "sent" (so that a difference there is the broker's, not the SDK's)."""
    events = events_to_send()
    answers = produce(javascript_sdk, f"{js_subscriber.url}/direct", events)
    assert {a["status"] for a in answers} == {202}, answers
    wire = {a["id"]: a["headers"] for a in answers}
    assert wire["js-binary-json"]["ce-count"] == "42"
    assert wire["js-binary-json"]["ce-flag"] == "true"
    assert wire["js-binary-json"]["ce-time"] == TIME
    assert wire["js-binary-bare"]["content-type"] == SDK_DEFAULT_CONTENT_TYPE

    def all_received() -> list[dict[str, Any]] | None:
        lines = js_subscriber.lines()
        return lines if len(lines) >= len(events) else None

    lines = wait_for(all_received, timeout=10, what="the direct deliveries")
    by_id = {event.id: event for event in events}
    for line in lines:
        sent = by_id[line["attributes"]["id"]]
        if sent.mode == "binary":  # structured mode keeps JSON types, binary mode has strings
            assert line["attributes"] == expected_attributes(sent), sent.id
            got = received_data(line, line["attributes"].get("datacontenttype"))
            assert got == expected_data(sent), sent.id
