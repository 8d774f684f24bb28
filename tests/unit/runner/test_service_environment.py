"""A Knative Service's local environment: precedence, Knative's injected variables, K_SINK."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest

from shop.manifests import Topology
from shop.runner.addresses import ports_after
from shop.runner.config import EnvOverride
from shop.runner.plan import (
    LocalContext,
    PlanError,
    check_overrides,
    display_names,
    service_environment,
    service_port,
    sink_environment,
)
from shop.runner.profile import LocalProfile
from tests.unit.runner.conftest import BROKER_BASE, LoadTopology, addresses_for

VENV_BIN = Path("/project/.venv/bin")

ORDER = """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: order-config, namespace: shop}
    data: {LOG_LEVEL: WARNING, FROM_CONFIG_MAP: "yes", WEB_CONCURRENCY: "2"}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: order-db, namespace: shop}
    stringData: {url: "postgresql://order:pw@db/order"}
    ---
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: order, namespace: shop, labels: {app: order}}
    spec:
      template:
        spec:
          containers:
            - command: [gunicorn]
              envFrom:
                - configMapRef: {name: order-config}
              env:
                - {name: LOG_LEVEL, value: INFO}
                - name: DATABASE_URL
                  valueFrom: {secretKeyRef: {name: order-db, key: url}}
                - {name: SHARED, value: manifest}
                - {name: HOST, value: 0.0.0.0}
                - {name: K_SINK, value: http://set-by-hand}
"""


def _order_env(
    topology_of: LoadTopology,
    context: LocalContext,
    *,
    profile: LocalProfile | None = None,
    environ: dict[str, str] | None = None,
    overrides: tuple[EnvOverride, ...] = (),
    extra: str = "",
) -> dict[str, str]:
    topology = topology_of(textwrap.dedent(ORDER) + extra)
    service = topology.service("shop", "order")
    assert service is not None
    return service_environment(
        service,
        topology,
        port=41000,
        addresses=addresses_for(topology),
        profile=profile or LocalProfile(),
        context=context,
        environ=environ or {"PATH": "/usr/bin:/bin"},
        venv_bin=VENV_BIN,
        overrides=overrides,
    )


def test_config_map_and_secret_refs_resolve_and_env_wins_over_env_from(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _order_env(topology_of, context)

    assert env["FROM_CONFIG_MAP"] == "yes"
    assert env["WEB_CONCURRENCY"] == "2"
    assert env["LOG_LEVEL"] == "INFO"  # env overrides envFrom, as the kubelet does
    assert env["DATABASE_URL"] == "postgresql://order:pw@db/order"


def test_knative_variables_are_injected_over_the_manifest(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _order_env(topology_of, context)

    assert env["PORT"] == "41000"
    assert env["HOST"] == "127.0.0.1"  # never listen beyond this machine
    assert env["K_SERVICE"] == "order"
    assert env["K_CONFIGURATION"] == "order"
    assert env["K_REVISION"] == "order-00001"


def test_each_step_overrides_the_one_before_and_env_overrides_come_last(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    profile = LocalProfile(
        inherit=("SHARED", "INHERITED", "PATH"),
        defaults={"SHARED": "default", "DEFAULTED": "default"},
        replace={"SHARED": "replaced", "NOT_DEFINED": "never"},
    )
    environ = {"SHARED": "shell", "INHERITED": "shell", "PATH": "/usr/bin"}

    env = _order_env(topology_of, context, profile=profile, environ=environ)
    assert env["INHERITED"] == "shell"
    assert env["DEFAULTED"] == "default"
    assert env["SHARED"] == "replaced"
    assert "NOT_DEFINED" not in env

    overridden = _order_env(
        topology_of,
        context,
        profile=profile,
        environ=environ,
        overrides=(
            EnvOverride("order", "SHARED", "cli"),
            EnvOverride("*", "HOST", "0.0.0.0"),
            EnvOverride("shop/order", "PORT", "9999"),
            EnvOverride("payment", "SHARED", "not for order"),
        ),
    )
    assert overridden["SHARED"] == "cli"
    assert overridden["HOST"] == "0.0.0.0"
    assert overridden["PORT"] == "9999"


def test_the_virtual_environment_comes_first_on_path(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _order_env(
        topology_of, context, profile=LocalProfile(inherit=("PATH",)), environ={"PATH": "/a:/b"}
    )

    assert env["PATH"] == f"{VENV_BIN}:/a:/b"


SINK_BINDINGS = {
    "a Broker ref: the local broker's ingress": (
        "{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}",
        f"{BROKER_BASE}/shop/default",
    ),
    "a Knative Service ref: its local URL": (
        "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: audit}}",
        "http://127.0.0.1:41001",
    ),
    "a ref and a relative uri: resolved against the ref": (
        "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: audit}, uri: /in}",
        "http://127.0.0.1:41001/in",
    ),
    "an absolute uri: as is": (
        "{uri: 'https://sink.example/events'}",
        "https://sink.example/events",
    ),
}


def _binding(sink: str, subject: str, extensions: str = "") -> str:
    spec = f"  subject: {subject}\n  sink: {sink}\n"
    if extensions:
        spec += f"  ceOverrides: {{extensions: {extensions}}}\n"
    return (
        "---\napiVersion: sources.knative.dev/v1\nkind: SinkBinding\n"
        "metadata: {name: order-sink, namespace: shop}\nspec:\n" + spec
    )


OTHERS = """
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: shop}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: audit, namespace: shop}
spec: {template: {spec: {containers: [{command: [run]}]}}}
"""
BY_NAME = "{apiVersion: serving.knative.dev/v1, kind: Service, name: order}"
BY_LABEL = (
    "{apiVersion: serving.knative.dev/v1, kind: Service, selector: {matchLabels: {app: order}}}"
)


@pytest.mark.parametrize(("sink", "expected"), SINK_BINDINGS.values(), ids=SINK_BINDINGS.keys())
def test_k_sink_comes_from_the_sink_binding_that_selects_the_service(
    topology_of: LoadTopology, context: LocalContext, sink: str, expected: str
) -> None:
    env = _order_env(topology_of, context, extra=OTHERS + _binding(sink, BY_NAME))

    assert env["K_SINK"] == expected
    assert "K_CE_OVERRIDES" not in env


def test_a_sink_binding_selects_by_label_and_sets_ce_overrides(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    sink = SINK_BINDINGS["a Broker ref: the local broker's ingress"][0]
    env = _order_env(
        topology_of, context, extra=OTHERS + _binding(sink, BY_LABEL, "{origin: local}")
    )

    assert env["K_SINK"] == f"{BROKER_BASE}/shop/default"
    assert json.loads(env["K_CE_OVERRIDES"]) == {"extensions": {"origin": "local"}}


def test_a_sink_that_does_not_resolve_injects_nothing(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    missing = "{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: absent}}"
    topology = topology_of(textwrap.dedent(ORDER) + OTHERS + _binding(missing, BY_NAME))
    order = topology.service("shop", "order")
    assert order is not None

    assert sink_environment(topology, order, addresses_for(topology)) == {}
    assert [item.reason for item in topology.not_ready] == ["SinkNotResolved"]


def test_a_service_no_sink_binding_selects_keeps_its_own_k_sink(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _order_env(topology_of, context)

    assert env["K_SINK"] == "http://set-by-hand"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("order:LOG_LEVEL=DEBUG", EnvOverride("order", "LOG_LEVEL", "DEBUG")),
        ("shop/order:URL=http://x:1/?a=b", EnvOverride("shop/order", "URL", "http://x:1/?a=b")),
        ("*:EMPTY=", EnvOverride("*", "EMPTY", "")),
    ],
)
def test_env_overrides_parse_service_key_and_value(text: str, parsed: EnvOverride) -> None:
    assert EnvOverride.parse(text) == parsed


@pytest.mark.parametrize("text", ["LOG_LEVEL=DEBUG", "order:=x", "order:LOG LEVEL=x", ":A=b"])
def test_a_malformed_env_override_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected SERVICE:KEY=VALUE|is not a valid"):
        EnvOverride.parse(text)


def test_an_env_override_for_an_unknown_service_is_refused(topology_of: LoadTopology) -> None:
    topology = topology_of(ORDER)

    check_overrides(topology, (EnvOverride("order", "A", "1"), EnvOverride("*", "B", "2")))
    with pytest.raises(PlanError, match=r"no Knative Service 'ordr' .*services: order"):
        check_overrides(topology, (EnvOverride("ordr", "A", "1"),))


def test_a_port_override_chooses_the_services_port(topology_of: LoadTopology) -> None:
    order = topology_of(ORDER).service("shop", "order")
    assert order is not None

    assert service_port(order, (), None) is None
    assert service_port(order, (EnvOverride("order", "PORT", "9000"),), None) == 9000
    with pytest.raises(PlanError, match="not a port number"):
        service_port(order, (EnvOverride("order", "PORT", "http"),), None)


def test_services_get_the_ports_after_the_brokers_skipping_busy_and_taken_ones() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        base = busy.getsockname()[1] - 1
        ports = ports_after(base, 3, taken={base + 2})

    # base + 1 listens, base + 2 is taken (by an --env PORT); the rest follow in order.
    assert len(ports) == 3
    assert ports == sorted(set(ports))
    assert ports[0] >= base + 3


def test_names_repeated_across_namespaces_or_taken_by_shop_up_are_qualified(
    topology_of: LoadTopology,
) -> None:
    def ksvc(name: str, namespace: str) -> str:
        return (
            f"---\napiVersion: serving.knative.dev/v1\nkind: Service\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\n"
            "spec: {template: {spec: {containers: [{command: [run]}]}}}\n"
        )

    topology: Topology = topology_of(
        ksvc("order", "a") + ksvc("order", "b") + ksvc("broker", "a") + ksvc("viewer", "a")
    )

    assert display_names(topology.services) == {
        ("a", "order"): "a/order",
        ("b", "order"): "b/order",
        ("a", "broker"): "a/broker",
        ("a", "viewer"): "viewer",
    }
