"""Fuzzing every edge of the shop over real sockets, against one `shop up` of the manifests.

Targets: the broker's ingress (`POST /shop/default`), a kit sink (the viewer's `POST /`) and
the JSON APIs of the order, customer and inventory services. Hypothesis generates raw HTTP/1.1
requests (tests/fuzz/event_requests.py, api_requests.py, http_requests.py); each example is a
list of them pipelined on one to three parallel connections, and each request is a case:
10,000 per target under SHOP_STRICT=1, a tenth otherwise. The invariants are in
tests/fuzz/invariants.py (every target), event_targets.py and json_apis.py (each target's
documentation); the memory of each target process is checked at the end of its campaign, and
stalled requests get their own test at the end (they take REQUEST_READ_SECONDS).

A failure is a defect in the target (or in these rules): hypothesis shrinks it; fix it and
add the minimal reproduction as a unit or integration test of the edge it found (e.g.
tests/unit/broker/test_http_server.py, tests/integration/kit/test_http_edges.py).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.api_requests import order_requests, stock_requests, user_requests
from tests.fuzz.campaign import CASES_PER_TARGET, Campaign, Tally
from tests.fuzz.event_targets import BrokerIngress, KitSink, broker_requests, sink_requests
from tests.fuzz.fuzzed_shop import Endpoint, endpoint, fuzzed_shop
from tests.fuzz.http_requests import RawRequest
from tests.fuzz.json_apis import JsonApi
from tests.fuzz.stalled_requests import DEADLINE_SECONDS, Stall, stall_problem, stalls
from tests.support.process_memory import MIB
from tests.support.raw_http import Exchange, run_plans
from tests.support.shop_up import ShopUp

pytestmark = [
    pytest.mark.slow,
    # A failing example of big requests has a big repr; hypothesis warns, and the warning
    # must not hide the failure it reports.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

RANDOM = os.environ.get("SHOP_FUZZ_RANDOM") == "1"
#: Requests in one example (so cases = examples x this, exactly).
REQUESTS_PER_EXAMPLE = 8
#: The chart's memory limit of every Knative Service container (manifests/60-...yaml).
CONTAINER_MEMORY_LIMIT = 384 * MIB
#: How much a target may grow over its campaign: its buffers, caches and a little more; a
#: leak of even 100 bytes per case would show.
MEMORY_GROWTH_BOUND = 96 * MIB
#: The viewer keeps the last VIEWER_HISTORY (1000) events it received, by design.
VIEWER_MEMORY_GROWTH_BOUND = 256 * MIB


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    with fuzzed_shop(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def fuzz(
    campaign: Campaign,
    requests: st.SearchStrategy[RawRequest],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run CASES_PER_TARGET cases against the campaign's target; print what happened."""
    examples = math.ceil(CASES_PER_TARGET / REQUESTS_PER_EXAMPLE)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # CI runs the same cases every time (a red run is a defect, not bad luck);
        # SHOP_FUZZ_RANDOM=1 explores new ones.
        derandomize=not RANDOM,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
        report_multiple_bugs=True,
    )
    @given(
        st.lists(requests, min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE),
        st.integers(1, 3),
    )
    def example(batch: list[RawRequest], connections: int) -> None:
        campaign.run(batch, connections)

    campaign.begin()
    try:
        example()
        campaign.check_memory()
    finally:
        with capsys.disabled():
            print("\n" + campaign.tally.summary())
    assert campaign.tally.cases >= CASES_PER_TARGET


def test_broker_ingress_keeps_every_invariant(
    shop: ShopUp, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = endpoint(shop, "broker")
    ingress = BrokerIngress("broker ingress", takes_batches=False, journal_url=broker.url)
    ingress.start()
    campaign = Campaign(
        ingress,
        broker.address,
        broker.pid,
        Tally("broker ingress"),
        memory_growth_bound=MEMORY_GROWTH_BOUND,
    )
    fuzz(campaign, broker_requests(), capsys)


def test_kit_sink_keeps_every_invariant(shop: ShopUp, capsys: pytest.CaptureFixture[str]) -> None:
    viewer = endpoint(shop, "viewer")
    campaign = Campaign(
        KitSink("kit sink (viewer POST /)"),
        viewer.address,
        viewer.pid,
        Tally("kit sink (viewer POST /)"),
        memory_growth_bound=VIEWER_MEMORY_GROWTH_BOUND,
        memory_limit=CONTAINER_MEMORY_LIMIT,
    )
    fuzz(campaign, sink_requests(), capsys)


@pytest.mark.parametrize(
    ("service", "prefix", "requests"),
    [
        ("order", b"/orders/", order_requests()),
        ("customer", b"/users/", user_requests()),
        ("inventory", b"/stock/", stock_requests()),
    ],
    ids=["order", "customer", "inventory"],
)
def test_json_api_keeps_every_invariant(
    shop: ShopUp,
    capsys: pytest.CaptureFixture[str],
    service: str,
    prefix: bytes,
    requests: st.SearchStrategy[RawRequest],
) -> None:
    target = endpoint(shop, service)
    name = f"{service} JSON API"
    campaign = Campaign(
        JsonApi(name, prefix),
        target.address,
        target.pid,
        Tally(name),
        memory_growth_bound=MEMORY_GROWTH_BOUND,
        memory_limit=CONTAINER_MEMORY_LIMIT,
    )
    fuzz(campaign, requests, capsys)


# -- stalled requests: all targets at once, REQUEST_READ_SECONDS each ------------------------------

BINARY_EVENT = (
    b"Host: 127.0.0.1\r\nce-id: before-the-stall\r\nce-source: /fuzz/stall\r\n"
    b"ce-specversion: 1.0\r\nce-type: com.example.fuzz\r\nContent-Length: 0\r\n\r\n"
)
STALL_TARGETS: dict[str, tuple[bytes, bytes]] = {
    "broker": (b"/shop/default", b"POST /shop/default HTTP/1.1\r\n" + BINARY_EVENT),
    "viewer": (b"/", b"POST / HTTP/1.1\r\n" + BINARY_EVENT),
    "order": (b"/orders", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    "customer": (b"/users", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    "inventory": (b"/stock/tea", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
}


@pytest.fixture(scope="module")
def stalled(shop: ShopUp) -> dict[str, list[tuple[Stall, Exchange]]]:
    """Every target's stalled requests, all sent at once (so the wait is paid once)."""
    results: dict[str, list[tuple[Stall, Exchange]]] = {}

    def attack(name: str, target: Endpoint) -> Callable[[], None]:
        def run() -> None:
            path, complete = STALL_TARGETS[name]
            cases = stalls(path, complete)
            exchanges = run_plans(
                target.address,
                [case.plan for case in cases],
                answer_seconds=DEADLINE_SECONDS,
                close_seconds=1.0,
                overall_seconds=DEADLINE_SECONDS + 1.0,
            )
            results[name] = list(zip(cases, exchanges, strict=True))

        return run

    threads = [
        threading.Thread(target=attack(name, endpoint(shop, name)), name=f"stall-{name}")
        for name in STALL_TARGETS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS + 30)
    return results


@pytest.mark.parametrize("name", list(STALL_TARGETS))
def test_stalled_requests_get_408_or_a_close_in_time(
    stalled: dict[str, list[tuple[Stall, Exchange]]], name: str
) -> None:
    assert name in stalled, f"the stalled requests against {name} did not finish"
    problems = [
        problem
        for stall, exchange in stalled[name]
        if (problem := stall_problem(stall, exchange)) is not None
    ]
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)
