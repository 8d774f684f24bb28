"""`shop status` against a cluster: the kubernetes client reading recorded API responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shop.cli import main
from tests.conftest import shared_path
from tests.integration.cli.recorded_api import FIXTURES, RecordedApiServer


@pytest.fixture
def ready(tmp_path: Path) -> Iterator[tuple[RecordedApiServer, Path]]:
    with RecordedApiServer("ready") as server:
        yield server, server.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def degraded(tmp_path: Path) -> Iterator[tuple[RecordedApiServer, Path]]:
    with RecordedApiServer("degraded") as server:
        yield server, server.kubeconfig(tmp_path / "kubeconfig")


def status(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, *extra: str
) -> tuple[int, str, str]:
    code = main(["status", "--kubeconfig", str(kubeconfig), "--namespace", "shop", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def section(output: str, title: str) -> dict[str, str]:
    """The rows of one section, by their first column."""
    lines = output.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {line.split()[0]: line for line in lines}


def test_a_ready_cluster_reports_every_object_ready_and_exits_0(
    capsys: pytest.CaptureFixture[str], ready: tuple[RecordedApiServer, Path]
) -> None:
    _, kubeconfig = ready
    code, out, _ = status(capsys, kubeconfig)
    assert code == 0, out
    assert "cluster (context kind-shop, namespace shop)" in out
    broker = section(out, "BROKER")["default"]
    assert "http://broker-ingress.knative-eventing.svc.cluster.local/shop/default" in broker
    assert "MTChannelBasedBroker" in broker and "True" in broker
    services = section(out, "SERVICES")
    assert set(services) == {
        "customer",
        "deadletter",
        "inventory",
        "notification",
        "order",
        "payment",
        "viewer",
    }
    assert all(" True " in line for line in services.values())
    triggers = section(out, "TRIGGERS")
    assert len(triggers) == 13
    assert "type = order.created" in triggers["payment-order-created"]
    assert "payment" in triggers["payment-order-created"]
    assert "all events" in triggers["viewer-all-events"]
    assert "everything is ready" in out


def test_event_types_are_listed_with_their_source_and_broker(
    capsys: pytest.CaptureFixture[str], ready: tuple[RecordedApiServer, Path]
) -> None:
    _, kubeconfig = ready
    _, out, _ = status(capsys, kubeconfig)
    event_types = section(out, "EVENT TYPES")
    assert len(event_types) == 11
    assert event_types["order.created"].split()[1:4] == ["/shop/order", "default", "True"]


def test_dead_letter_counts_come_from_the_deadletter_revision_through_the_api_proxy(
    capsys: pytest.CaptureFixture[str], ready: tuple[RecordedApiServer, Path]
) -> None:
    server, kubeconfig = ready
    _, out, _ = status(capsys, kubeconfig)
    assert "3 stored, 2 not redelivered" in out
    services = section(out, "SERVICES")
    assert services["payment"].split()[3] == "2"
    assert services["notification"].split()[3] == "1"
    assert services["order"].split()[3] == "0"
    proxied = "/api/v1/namespaces/shop/services/deadletter-00001-private:http/proxy/"
    assert f"{proxied}deadletters/summary" in server.requests


def test_a_degraded_cluster_says_what_is_not_ready_and_why_and_exits_1(
    capsys: pytest.CaptureFixture[str], degraded: tuple[RecordedApiServer, Path]
) -> None:
    _, kubeconfig = degraded
    code, out, _ = status(capsys, kubeconfig)
    assert code == 1
    payment = section(out, "SERVICES")["payment"]
    assert " False " in payment
    assert "RevisionFailed" in payment and "Back-off pulling image" in payment
    triggers = section(out, "TRIGGERS")
    for name in ("notification-user-created", "notification-order-confirmed"):
        assert " False " in triggers[name]
        assert '"notification" not found' in triggers[name]
    assert " True " in triggers["order-payment-authorized"]
    assert "NOT everything is ready" in out


def test_an_older_cluster_serving_only_v1beta2_event_types_is_read_too(
    capsys: pytest.CaptureFixture[str], degraded: tuple[RecordedApiServer, Path]
) -> None:
    server, kubeconfig = degraded
    _, out, _ = status(capsys, kubeconfig)
    assert "/apis/eventing.knative.dev/v1beta3/namespaces/shop/eventtypes" in server.requests
    event_types = section(out, "EVENT TYPES")
    assert event_types["payment.voided"].split()[1:4] == ["/shop/payment", "default", "True"]


def test_a_scaled_to_zero_deadletter_service_makes_the_counts_unknown_not_wrong(
    capsys: pytest.CaptureFixture[str], degraded: tuple[RecordedApiServer, Path]
) -> None:
    _, kubeconfig = degraded
    _, out, _ = status(capsys, kubeconfig)
    assert "unknown: the API server answered 503" in out
    assert "--deadletter-url" in out
    assert section(out, "SERVICES")["order"].split()[3] == "?"


def test_a_wrong_token_is_reported_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with RecordedApiServer("ready") as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", token="expired")
        code, _, err = status(capsys, kubeconfig)
    assert code == 2
    assert "the API server answered 401" in err


def test_an_unknown_context_is_reported(
    capsys: pytest.CaptureFixture[str], ready: tuple[RecordedApiServer, Path]
) -> None:
    _, kubeconfig = ready
    code, _, err = status(capsys, kubeconfig, "--context", "no-such-context")
    assert code == 2 and "kubeconfig" in err


def _objects(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["items"] if document.get("kind", "").endswith("List") else []


def test_the_recordings_are_valid_knative_objects() -> None:
    schemas_dir = shared_path("schemas", "knative")
    checked = 0
    for recording in sorted(FIXTURES.rglob("*.json")):
        for item in _objects(json.loads(recording.read_text())):
            group, version = item["apiVersion"].split("/")
            schema_file = schemas_dir / f"{group}_{item['kind'].lower()}_{version}.json"
            schema = json.loads(schema_file.read_text())
            errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(item)]
            assert not errors, f"{recording}: {item['metadata']['name']}: {errors}"
            checked += 1
    assert checked > 50
