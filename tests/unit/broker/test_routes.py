"""Resolving the manifests into routes: subscriber URLs, dead-letter sinks, delivery, filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shop.broker.routes import RouteError, Routes, build_routes, load_endpoints
from shop.manifests import load_topology
from tests.support.broker_process import broker_manifest, service_manifest, trigger_manifest
from wire.knative.filters import compile_trigger_filter

BASE = "http://127.0.0.1:8080"


def routes(tmp_path: Path, documents: list[dict[str, Any]], endpoints: dict[str, str]) -> Routes:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents))
    return build_routes(load_topology(tmp_path), endpoints, BASE, compile_trigger_filter, 32)


def ref(name: str, kind: str = "Service", api: str = "serving.knative.dev/v1") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "name": name}


def test_a_service_ref_resolves_through_the_endpoints_and_a_uri_is_appended(tmp_path: Path) -> None:
    built = routes(
        tmp_path,
        [
            broker_manifest(),
            service_manifest("order"),
            trigger_manifest("plain", "order"),
            trigger_manifest("with-path", {"ref": ref("order"), "uri": "/events"}),
            trigger_manifest("absolute", {"uri": "http://example.test/hook"}),
            trigger_manifest(
                "to-broker", {"ref": ref("default", "Broker", "eventing.knative.dev/v1")}
            ),
        ],
        {"order": "http://127.0.0.1:5001"},
    )
    urls = {key: route.subscriber_url for key, route in built.triggers.items()}
    assert urls == {
        "shop/plain": "http://127.0.0.1:5001",
        "shop/with-path": "http://127.0.0.1:5001/events",
        "shop/absolute": "http://example.test/hook",
        "shop/to-broker": f"{BASE}/shop/default",
    }
    broker = built.broker("shop", "default")
    assert broker is not None
    assert broker.url == f"{BASE}/shop/default"
    assert [t.name for t in broker.triggers] == ["plain", "with-path", "absolute", "to-broker"]


def test_delivery_and_dead_letter_sink_come_from_the_trigger_else_the_broker(
    tmp_path: Path,
) -> None:
    built = routes(
        tmp_path,
        [
            broker_manifest(delivery={"retry": 4, "deadLetterSink": {"ref": ref("dlq")}}),
            service_manifest("dlq"),
            trigger_manifest("inherits", {"uri": "http://x.test/"}),
            trigger_manifest("own", {"uri": "http://x.test/"}, delivery={"retry": 1}),
        ],
        {"dlq": "http://127.0.0.1:5002"},
    )
    inherits, own = built.triggers["shop/inherits"], built.triggers["shop/own"]
    assert inherits.delivery.retry == 4
    assert own.delivery.retry == 1
    assert inherits.dead_letter_url == own.dead_letter_url == "http://127.0.0.1:5002"


def test_a_service_without_a_local_endpoint_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(RouteError, match="no local endpoint"):
        routes(
            tmp_path,
            [broker_manifest(), service_manifest("order"), trigger_manifest("t", "order")],
            {},
        )


def test_a_trigger_knative_would_report_not_ready_gets_no_route(tmp_path: Path) -> None:
    built = routes(
        tmp_path,
        [
            broker_manifest(),
            trigger_manifest("ghost", "not-defined"),
            trigger_manifest("elsewhere", {"uri": "http://x.test/"}, broker="missing"),
        ],
        {},
    )
    assert dict(built.triggers) == {}


def test_container_concurrency_lowers_the_delivery_concurrency(tmp_path: Path) -> None:
    built = routes(
        tmp_path,
        [
            broker_manifest(),
            service_manifest("one", containerConcurrency=1),
            service_manifest("any", containerConcurrency=0),
            trigger_manifest("one", "one"),
            trigger_manifest("any", "any"),
        ],
        {"one": "http://127.0.0.1:1", "any": "http://127.0.0.1:2"},
    )
    assert built.triggers["shop/one"].concurrency == 1
    assert built.triggers["shop/any"].concurrency == 32


def test_filters_are_compiled_once_into_a_predicate(tmp_path: Path) -> None:
    built = routes(
        tmp_path,
        [
            broker_manifest(),
            trigger_manifest("t", {"uri": "http://x.test/"}, filter={"attributes": {"type": "a"}}),
        ],
        {},
    )
    matches = built.triggers["shop/t"].matches
    assert matches({"type": "a", "id": "1", "source": "/s", "specversion": "1.0"})
    assert not matches({"type": "b", "id": "1", "source": "/s", "specversion": "1.0"})


def test_the_endpoints_file_is_a_json_object_of_urls(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    assert load_endpoints(path) == {}
    path.write_text('{"order": "http://127.0.0.1:1"}')
    assert load_endpoints(path) == {"order": "http://127.0.0.1:1"}
    path.write_text("[1, 2]")
    with pytest.raises(RouteError):
        load_endpoints(path)
