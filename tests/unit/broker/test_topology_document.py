"""The broker's `/_shop/topology`: the topology document (wire.topology) of its routes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from shop.broker.api import routes_document
from shop.broker.routes import build_routes
from shop.manifests import load_topology
from tests.conftest import REPO_ROOT
from tests.support.broker_process import broker_manifest, service_manifest, trigger_manifest
from wire.knative.filters import compile_trigger_filter
from wire.topology import parse_topology

BASE = "http://127.0.0.1:8080"
SCHEMA = json.loads((REPO_ROOT / "wire" / "topology.schema.json").read_text(encoding="utf-8"))
DEADLETTER = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "deadletter"}


def test_the_brokers_document_matches_the_schema_and_names_its_urls(tmp_path: Path) -> None:
    manifests = [
        broker_manifest(delivery={"retry": 2, "deadLetterSink": {"ref": DEADLETTER}}),
        service_manifest("order"),
        service_manifest("deadletter"),
        trigger_manifest("exact", "order", filters=[{"exact": {"type": "order.created"}}]),
        trigger_manifest(
            "legacy",
            {"ref": {**DEADLETTER, "name": "order"}, "uri": "/hooks"},
            filter={"attributes": {"type": "order.cancelled"}},
            delivery={"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT0.5S"},
        ),
        trigger_manifest("outside", {"uri": "http://example.test/hook"}),
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(manifests))
    endpoints = {"order": "http://127.0.0.1:5001", "deadletter": "http://127.0.0.1:5006"}
    routes = build_routes(load_topology(tmp_path), endpoints, BASE, compile_trigger_filter, 8)

    document = routes_document(routes)

    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors == [], [error.message for error in errors]
    assert document["brokers"] == [
        {
            "namespace": "shop",
            "name": "default",
            "url": f"{BASE}/shop/default",
            "triggers": ["exact", "legacy", "outside"],
        }
    ]
    exact, legacy, outside = document["triggers"]
    assert exact["subscriber"] == {"uri": "http://127.0.0.1:5001"}
    assert exact["deadLetterSink"] == {"uri": "http://127.0.0.1:5006"}
    assert exact["filters"] == [{"exact": {"type": "order.created"}}]
    assert legacy["subscriber"] == {"uri": "http://127.0.0.1:5001/hooks"}
    assert legacy["filter"] == {"attributes": {"type": "order.cancelled"}}
    assert legacy["delivery"]["backoffDelaySeconds"] == 0.5
    # Its own delivery names no sink: the broker's applies, and the document says which.
    assert legacy["deadLetterSink"] == {"uri": "http://127.0.0.1:5006"}
    assert outside["subscriber"] == {"uri": "http://example.test/hook"}
    assert {trigger["concurrency"] for trigger in document["triggers"]} == {8}
    view = parse_topology(document)
    assert [route.subscriber for route in view.triggers] == [
        "http://127.0.0.1:5001",
        "http://127.0.0.1:5001/hooks",
        "http://example.test/hook",
    ]
