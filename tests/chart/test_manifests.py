"""manifests/ is the chart rendered with default values, in apply order, and `shop up` reads it."""

from __future__ import annotations

import re

import yaml

from shop.manifests import load_topology
from tests.chart.rendering import MANIFESTS, chart_values, render_module


def test_manifests_are_the_chart_rendered_with_default_values(helm4: str) -> None:
    render = render_module()
    diff = render.differences(render.render(helm4), render.on_disk(MANIFESTS))
    assert not diff, f"manifests/ differs from the chart; run `make manifests`:\n{diff}"


def test_rendering_is_deterministic(helm4: str, helm3: str) -> None:
    render = render_module()
    first = render.render(helm4)
    assert render.render(helm4) == first
    assert render.render(helm3) == first


def test_each_manifest_file_holds_one_kind_in_apply_order() -> None:
    render = render_module()
    names = sorted(path.name for path in MANIFESTS.glob("*.yaml"))
    assert names == sorted(set(render.KIND_FILES.values()) & set(names))
    assert names[0] == "00-namespace.yaml"
    order = list(dict.fromkeys(render.KIND_FILES.values()))
    assert names == [name for name in order if name in names]
    for name in names:
        assert re.fullmatch(r"\d\d-[a-z-]+\.yaml", name)
        docs = [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
        kinds = {(str(d["apiVersion"]).rpartition("/")[0], d["kind"]) for d in docs}
        assert [render.KIND_FILES[kind] for kind in kinds] == [name], name
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == "shop", (name, doc["metadata"]["name"])


def test_the_local_runner_admits_the_manifests() -> None:
    topology = load_topology(MANIFESTS)
    services = chart_values()["services"]
    assert {service.name for service in topology.services} == set(services)
    assert [(broker.namespace, broker.name) for broker in topology.brokers] == [("shop", "default")]
    assert topology.not_ready == ()
    for service in topology.services:
        assert service.command == ("gunicorn",)
        assert service.args[-1] == f"services.{service.name}.app:create_app()"
        bound = topology.sink_binding_for(service) is not None
        assert bound == services[service.name]["sinkBinding"], service.name
    subscribed = {t.name for t in topology.triggers if t.subscriber.ref is not None}
    assert len(subscribed) == len(topology.triggers)
