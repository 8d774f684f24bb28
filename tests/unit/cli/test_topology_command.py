"""`shop topology`: the trigger graph of a manifest folder, as text and as Mermaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shop.cli import main
from tests.support.broker_process import broker_manifest, service_manifest, trigger_manifest

DLS = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "deadletter"}}
AUDIT = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "audit"}}


def write(directory: Path, objects: list[dict[str, Any]]) -> Path:
    directory.mkdir()
    (directory / "topology.yaml").write_text(yaml.safe_dump_all(objects))
    return directory


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return write(
        tmp_path / "manifests",
        [
            broker_manifest(delivery={"deadLetterSink": DLS}),
            service_manifest("inventory"),
            service_manifest("deadletter"),
            service_manifest("audit"),
            service_manifest("special-sink"),
            trigger_manifest(
                "inventory-order-created",
                "inventory",
                filters=[{"exact": {"type": "order.created"}}],
            ),
            trigger_manifest(
                "audit-orders",
                {**AUDIT, "uri": "/orders"},
                filters=[{"prefix": {"type": "order."}}],
                delivery={
                    "deadLetterSink": {
                        "ref": {**DLS["ref"], "name": "special-sink"},
                    }
                },
            ),
            trigger_manifest("everything", "audit"),
            trigger_manifest("orphan", "nobody-runs-this"),
        ],
    )


def test_text_lists_every_trigger_with_its_filter_and_subscriber(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topology", "--manifests", str(manifests)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Broker shop/default  (dead letters -> deadletter)"
    by_name = {line.split()[0]: line for line in lines[1:] if line.startswith("  ")}
    assert by_name["inventory-order-created"].split("  ")[-1].strip() == "-> inventory"
    assert "type = order.created" in by_name["inventory-order-created"]
    assert "type starts with order." in by_name["audit-orders"]
    assert "-> audit/orders" in by_name["audit-orders"]
    assert "(dead letters -> special-sink)" in by_name["audit-orders"]
    assert "all events" in by_name["everything"]
    assert "not ready: Trigger shop/orphan" in out


def test_mermaid_draws_the_same_graph(manifests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--manifests", str(manifests), "--format", "mermaid"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "flowchart LR"
    assert '  broker_shop_default(["Broker shop/default"])' in out
    assert '  broker_shop_default -- "type = order.created" --> svc_inventory' in out
    assert '  broker_shop_default -- "all events" --> svc_audit' in out
    assert '  broker_shop_default -. "dead letters" .-> svc_deadletter' in out
    assert '  broker_shop_default -. "dead letters" .-> svc_special_sink' in out


def test_the_charts_manifests_render(capsys: pytest.CaptureFixture[str]) -> None:
    manifests = Path(__file__).resolve().parents[3] / "manifests"
    if not manifests.is_dir():
        pytest.skip("manifests/ is not rendered yet")
    assert main(["topology", "--manifests", str(manifests)]) == 0
    out = capsys.readouterr().out
    assert "viewer-all-events" in out and "(dead letters -> deadletter)" in out


def test_an_invalid_manifest_is_reported_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = trigger_manifest("bad", "inventory", filters=[{"exact": {"type": "a"}, "prefix": {}}])
    bad["spec"]["filters"] = [{"exact": {"type": "a"}, "suffix": {"type": "b"}}]
    directory = write(tmp_path / "bad", [broker_manifest(), bad])
    assert main(["topology", "--manifests", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "topology.yaml" in err and "filters" in err


def test_a_folder_that_does_not_exist_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topology", "--manifests", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
