"""One producer's bad input never costs another producer anything: the broker over real sockets.

Poison next to valid traffic, header injection, deep data, stalled connections and backpressure,
each against a real `shop broker` process and a real subscriber.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.broker.helpers import journal_event
from tests.support.broker_process import (
    BrokerProcess,
    broker_manifest,
    service_manifest,
    trigger_manifest,
)
from tests.support.events import wire_event
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Answer, Received, ScriptedSubscriber, always
from wire.http_binding import to_binary

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
def subscriber() -> Iterator[ScriptedSubscriber]:
    subscriber = ScriptedSubscriber(always(202))
    yield subscriber
    subscriber.close()


def start(tmp_path_factory: pytest.TempPathFactory, url: str, *args: str) -> BrokerProcess:
    return BrokerProcess(
        tmp_path_factory.mktemp("hostile"),
        [broker_manifest(), service_manifest("sink"), trigger_manifest("all", "sink")],
        {"sink": url},
        *args,
    ).start()


def structured(event_id: str, **attributes: object) -> bytes:
    document = {"specversion": "1.0", "id": event_id, "source": "/p", "type": "t", **attributes}
    return json.dumps(document).encode()


# Each is refused with 400 and costs nobody else anything. The first would fail SQLite's write
# (a lone surrogate cannot be encoded as UTF-8), the others break the String rule.
POISON = [
    b'{"specversion":"1.0","id":"p","source":"/p","type":"t","subject":"\\ud800"}',
    b'{"specversion":"1.0","id":"p","source":"\\n","type":"t"}',
    b'{"specversion":"1.0","id":"p","source":"/p","type":"t","ext":"a\\u0000b"}',
    b'{"specversion":"1.0","id":"p","source":"/p","type":"t","time":"2020-01-01T00:00:00Z\\n"}',
    b'{"specversion":"1.0","id":"p","source":"/p","type":"t","data":"\\udc00"}',
]


def test_poison_next_to_valid_producers_is_refused_alone_and_every_valid_event_is_delivered(
    tmp_path_factory: pytest.TempPathFactory, subscriber: ScriptedSubscriber
) -> None:
    broker = start(tmp_path_factory, subscriber.url)
    try:
        url = broker.ingress()
        stop = threading.Event()
        poisoned: list[int] = []

        def poison() -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    for body in POISON:
                        poisoned.append(
                            session.post(url, data=body, headers=STRUCTURED).status_code
                        )

        def producer(number: int) -> list[str]:
            ids = []
            with requests.Session() as session:
                for n in range(100):
                    event_id = f"p{number}-{n}"
                    if n % 2:
                        response = session.post(url, data=structured(event_id), headers=STRUCTURED)
                    else:
                        headers, body = to_binary(wire_event("t", {"n": n}, id=event_id))
                        response = session.post(url, data=body, headers=headers)
                    assert response.status_code == 202, response.text
                    ids.append(event_id)
            return ids

        spoiler = threading.Thread(target=poison)
        spoiler.start()
        with ThreadPoolExecutor(4) as pool:
            sent = [event_id for ids in pool.map(producer, range(4)) for event_id in ids]
        stop.set()
        spoiler.join()
        assert set(poisoned) == {400} and len(poisoned) > 50
        subscriber.wait_for(len(sent))
        delivered = {r.headers.get("ce-id") or r.event().id for r in subscriber.received()}
        assert delivered == set(sent)

        def all_journaled() -> list[dict[str, object]] | None:
            events = broker.get("/_shop/events?limit=1000")["events"]
            done = [e for e in events if e["deliveries"][0]["state"] == "delivered"]
            return events if len(done) == len(sent) else None

        events = wait_for(all_journaled, what="every delivery journaled")
        assert sorted(e["id"] for e in events) == sorted(sent)
        for event_id in sent[::37]:
            assert journal_event(broker, event_id)["attempts"][0]["outcome"] == "delivered"
    finally:
        broker.stop()


def test_no_event_can_add_headers_to_the_requests_sent_to_subscribers(
    tmp_path_factory: pytest.TempPathFactory, subscriber: ScriptedSubscriber
) -> None:
    broker = start(tmp_path_factory, subscriber.url)
    try:
        url = broker.ingress()
        injected = structured("i1", datacontenttype='text/plain; x="a\r\nX-Injected: yes"')
        response = requests.post(url, data=injected, headers=STRUCTURED)
        assert response.status_code == 400
        assert response.json()["attribute"] == "datacontenttype"
        headers, body = to_binary(wire_event("t", id="i2"))
        headers["ce-note"] = "a%0D%0AX-Injected:%20yes"
        response = requests.post(url, data=body, headers=headers)
        assert response.status_code == 400 and response.json()["attribute"] == "note"
        # A pass-through header the broker could not write back as it came (bytes that are not
        # UTF-8; the parser itself refuses control characters) is not passed on.
        headers, body = to_binary(wire_event("t", id="i3"))
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall(
                f"POST /shop/default HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                f"{head}Knative-Note: a\xffb\r\nConnection: close\r\n\r\n".encode("latin-1")
                + body
            )
            assert sock.recv(1000).startswith(b"HTTP/1.1 202")
        (received,) = subscriber.wait_for(1)
        assert "knative-note" not in received.headers
        assert not any("injected" in name for name in received.headers)
    finally:
        broker.stop()


def test_deeply_nested_data_is_carried_and_every_reader_of_it_answers(
    tmp_path_factory: pytest.TempPathFactory, subscriber: ScriptedSubscriber
) -> None:
    broker = start(tmp_path_factory, subscriber.url)
    try:
        nested = b"[" * 5000 + b"]" * 5000
        headers, _ = to_binary(wire_event("t", id="deep"))
        headers["Content-Type"] = "application/json"
        response = requests.post(broker.ingress(), data=nested, headers=headers)
        assert response.status_code == 202
        (received,) = subscriber.wait_for(1)
        assert received.body == nested
        document = journal_event(broker, "deep")
        assert document["data_base64"]  # too deep to show as JSON: shown as the bytes it is
        structured_deep = (
            b'{"specversion":"1.0","id":"d2","source":"/p","type":"t","data":' + nested + b"}"
        )
        response = requests.post(broker.ingress(), data=structured_deep, headers=STRUCTURED)
        assert response.status_code == 400
        assert "deeper than 64" in response.json()["error"]
    finally:
        broker.stop()


def test_256_stalled_connections_do_not_slow_the_broker_down(
    tmp_path_factory: pytest.TempPathFactory, subscriber: ScriptedSubscriber
) -> None:
    broker = start(tmp_path_factory, subscriber.url)
    stalled = []
    try:
        for n in range(256):
            sock = socket.create_connection(("127.0.0.1", broker.port))
            half = (
                b"POST /shop/default HTTP/1.1\r\nHost: x\r\nce-id: x"
                if n % 2
                else (b"POST /shop/default HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            )
            sock.sendall(half)
            stalled.append(sock)
        with requests.Session() as session:
            for n in range(20):
                started = time.perf_counter()
                assert session.get(f"{broker.url}/healthz", timeout=2).status_code == 200
                headers, body = to_binary(wire_event("t", id=f"s{n}"))
                assert session.post(broker.ingress(), data=body, headers=headers).status_code == 202
                assert time.perf_counter() - started < 0.1
    finally:
        for sock in stalled:
            sock.close()
        broker.stop()


def test_the_ingress_stops_reading_while_deliveries_fall_behind_and_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    release = threading.Event()

    def blocked(n: int, received: Received) -> Answer:
        release.wait(30)
        return Answer(202)

    subscriber = ScriptedSubscriber(blocked)
    broker = start(tmp_path_factory, subscriber.url, "--max-unfinished", "20", "--concurrency", "2")
    answers: list[int] = []
    try:

        def produce(n: int) -> None:
            headers, body = to_binary(wire_event("t", id=f"b{n}"))
            answers.append(
                requests.post(broker.ingress(), data=body, headers=headers, timeout=30).status_code
            )

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(produce, n) for n in range(100)]
            time.sleep(1.5)
            # Only about the bound got in; the other producers wait, unanswered, not refused.
            assert 20 <= len(answers) < 60, len(answers)
            metrics = requests.get(f"{broker.url}/metrics", timeout=5).text
            assert "shop_broker" in metrics
            release.set()
            for future in futures:
                future.result()
        assert answers == [202] * 100
        assert len({r.headers["ce-id"] for r in subscriber.wait_for(100, timeout=30)}) == 100
    finally:
        release.set()
        broker.stop()
        subscriber.close()
