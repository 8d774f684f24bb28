"""endpoints.json: one flat map of strings that people, tests and the broker read."""

from __future__ import annotations

import json
from pathlib import Path

from shop.runner.endpoints import endpoints_document, shadowed_services, write_json
from tests.unit.runner.conftest import LoadTopology, addresses_for


def _ksvc(name: str, namespace: str = "shop") -> str:
    return (
        f"---\napiVersion: serving.knative.dev/v1\nkind: Service\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec: {template: {spec: {containers: [{command: [run]}]}}}\n"
    )


def _broker(name: str, namespace: str = "shop") -> str:
    return (
        f"---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
    )


def test_the_broker_key_is_the_first_brokers_ingress_and_every_broker_is_listed(
    topology_of: LoadTopology,
) -> None:
    topology = topology_of(_broker("default") + _broker("audit", "ops") + _ksvc("order"))

    document = endpoints_document(
        topology, addresses_for(topology), "smtp://127.0.0.1:2525", Path("/s/mail"), pid=4242
    )

    assert document == {
        "broker": "http://127.0.0.1:8080/shop/default",
        "broker/shop/default": "http://127.0.0.1:8080/shop/default",
        "broker/ops/audit": "http://127.0.0.1:8080/ops/audit",
        "order": "http://127.0.0.1:41000",
        "shop/order": "http://127.0.0.1:41000",
        "smtp": "smtp://127.0.0.1:2525",
        "maildir": "/s/mail",
        "pid": "4242",
    }
    assert all(isinstance(value, str) for value in document.values())  # the broker needs this


def test_a_service_whose_bare_name_is_taken_is_listed_by_namespace_and_name(
    topology_of: LoadTopology,
) -> None:
    topology = topology_of(_ksvc("order", "a") + _ksvc("order", "b") + _ksvc("smtp") + _ksvc("pid"))

    document = endpoints_document(
        topology, addresses_for(topology), "smtp://x:1", Path("/m"), pid=7
    )

    assert document["order"] == document["a/order"] == "http://127.0.0.1:41000"
    assert document["b/order"] == "http://127.0.0.1:41001"
    assert document["shop/smtp"] == "http://127.0.0.1:41002"
    assert document["smtp"] == "smtp://x:1"
    assert document["shop/pid"] == "http://127.0.0.1:41003"
    assert document["pid"] == "7"
    assert shadowed_services(topology) == ["b/order", "shop/smtp", "shop/pid"]


def test_the_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "run" / "endpoints.json"

    write_json(path, {"a": "1"})
    write_json(path, {"b": "2"})

    assert json.loads(path.read_text()) == {"b": "2"}
    assert [item.name for item in path.parent.iterdir()] == ["endpoints.json"]
