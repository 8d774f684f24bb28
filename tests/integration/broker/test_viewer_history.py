"""The viewer's history across a restart of the viewer, filled from a real broker's journal."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from werkzeug.serving import make_server

from services.viewer.app import create_app
from shop.inspect.tail import TailOptions, follow
from tests.integration.broker.conftest import NewSubscriber, StartBroker
from tests.integration.broker.helpers import send, wait_for_state
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.processes import free_port, wait_for
from tests.support.scripted_subscriber import always
from tests.unit.viewer.conftest import viewer_config

# The broker keeps trying the viewer while it is down, and gets through soon after it is back.
RETRY_QUICKLY = {"retry": 40, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"}
STUCK = {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT30S"}


@contextmanager
def viewer_on(port: int, broker: BrokerProcess) -> Iterator[str]:
    """A viewer process's worth (its app, its own history) served on `port`, reading the
    broker's journal at start as it does under `shop up`."""
    config = viewer_config(
        history=50,
        broker_url=broker.ingress(),
        journal_url=f"{broker.url}/_shop/events",
        journal_seconds=5.0,
    )
    server = make_server("127.0.0.1", port, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def viewer_events(url: str) -> list[dict[str, Any]]:
    """The viewer's buffered events, oldest first."""
    events: list[dict[str, Any]] = requests.get(f"{url}/api/events", timeout=5).json()["events"]
    return events[::-1]


def test_a_restarted_viewer_has_its_history_back_and_lists_a_redelivered_event_once(
    start_broker: StartBroker,
) -> None:
    port = free_port()
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest(
                "viewer-all-events", {"uri": f"http://127.0.0.1:{port}/"}, delivery=RETRY_QUICKLY
            ),
        ]
    )
    with viewer_on(port, broker) as viewer:
        before = [send(broker, "test.seen", {"n": n}) for n in range(2)]
        for event in before:
            wait_for_state(broker, event.id, "shop/viewer-all-events", "delivered")
        assert [e["id"] for e in viewer_events(viewer)] == [e.id for e in before]
    # While the viewer is down the broker takes an event it cannot deliver yet.
    missed = send(broker, "test.missed", {"n": 2})
    with viewer_on(port, broker) as viewer:
        restored = viewer_events(viewer)
        assert [e["id"] for e in restored] == [e.id for e in (*before, missed)]
        assert restored[0]["data"] == {"n": 0}
        assert "knativebrokerttl" not in restored[0]["extensions"]
        status = requests.get(f"{viewer}/api/status", timeout=5).json()
        assert status["restored"]["events"] == 3 and status["restored"]["error"] is None
        # The retry reaches the new viewer: the same entry, now delivered once; no second one.
        wait_for_state(broker, missed.id, "shop/viewer-all-events", "delivered")
        after = viewer_events(viewer)
        assert [e["id"] for e in after] == [e.id for e in (*before, missed)]
        assert [e["deliveries"] for e in after] == [0, 0, 1]


def test_tail_with_history_after_a_restart_says_where_the_broker_pruned(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    port = free_port()
    held_by = subscriber_factory(always(503))  # keeps `test.held` events unfinished
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest("viewer-all-events", {"uri": f"http://127.0.0.1:{port}/"}),
            trigger_manifest(
                "held",
                {"uri": held_by.url},
                filter={"attributes": {"type": "test.held"}},
                delivery=STUCK,
            ),
        ],
        None,
        "--retention-age",
        "1",
    )
    with viewer_on(port, broker):
        gone = [send(broker, "test.gone") for _ in range(2)]
        held = send(broker, "test.held")
        wait_for_state(broker, held.id, "shop/viewer-all-events", "delivered")

        def journal_ids() -> list[str]:
            return [e["id"] for e in broker.get("/_shop/events")["events"]]

        wait_for(lambda: journal_ids() == [held.id], what="the delivered events to be pruned")
    pruned_before = broker.get("/_shop/events")["pruned_before_seq"]
    assert len(gone) == 2 and pruned_before is not None
    with viewer_on(port, broker) as viewer:
        out, err = io.StringIO(), io.StringIO()
        assert follow(TailOptions(viewer, history=True, count=1), out, err) == 0
    assert f"id={held.id}" in out.getvalue()
    assert err.getvalue().splitlines() == [
        f"shop tail: history before seq {pruned_before} was pruned (retention: 1 s or 256 MiB)"
    ]
