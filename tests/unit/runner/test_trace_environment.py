"""Traces under `shop up`: every service exports to the broker's OTLP receiver, by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from shop.runner.config import EnvOverride, UpConfig
from shop.runner.endpoints import endpoints_document
from shop.runner.plan import LocalContext, plan_broker, service_environment
from shop.runner.profile import LocalProfile
from tests.unit.runner.conftest import BROKER_BASE, LoadTopology, addresses_for

TOPOLOGY = """
    apiVersion: eventing.knative.dev/v1
    kind: Broker
    metadata: {name: default, namespace: shop}
    ---
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: payment, namespace: shop}
    spec:
      template:
        spec:
          containers:
            - command: [gunicorn]
              env:
                - {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: "http://collector.observability:4318"}
                - {name: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, value: "http://collector:4318/v1/traces"}
                - {name: OTEL_SERVICE_NAME, value: payment-in-the-cluster}
"""


def payment_env(
    topology_of: LoadTopology,
    context: LocalContext,
    overrides: tuple[EnvOverride, ...] = (),
) -> dict[str, str]:
    topology = topology_of(TOPOLOGY)
    service = topology.service("shop", "payment")
    assert service is not None
    return service_environment(
        service,
        topology,
        port=41000,
        addresses=addresses_for(topology),
        profile=LocalProfile(),
        context=context,
        environ={"PATH": "/usr/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-the-shell"},
        venv_bin=Path("/venv/bin"),
        overrides=overrides,
    )


def test_a_service_exports_its_spans_to_the_broker_under_its_own_name(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = payment_env(topology_of, dataclasses.replace(context, otlp_endpoint=BROKER_BASE))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == BROKER_BASE
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "payment"
    # the cluster's collector, which would win over the endpoint, means nothing here
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in env


def test_with_tracing_off_a_service_exports_nowhere(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = payment_env(topology_of, context)  # otlp_endpoint None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in env


def test_an_env_override_still_wins(topology_of: LoadTopology, context: LocalContext) -> None:
    env = payment_env(
        topology_of,
        dataclasses.replace(context, otlp_endpoint=BROKER_BASE),
        (EnvOverride("payment", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),),
    )
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"


def test_endpoints_json_names_the_receiver_when_tracing_is_on(topology_of: LoadTopology) -> None:
    topology = topology_of(TOPOLOGY)
    args = (topology, addresses_for(topology), "smtp://127.0.0.1:2525", Path("/s/mail"))
    on = endpoints_document(*args, pid=1, otlp=f"{BROKER_BASE}/v1/traces")
    assert on["otlp"] == f"{BROKER_BASE}/v1/traces"
    assert "otlp" not in endpoints_document(*args, pid=1)


def test_no_tracing_reaches_the_broker(tmp_path: Path, context: LocalContext) -> None:
    config = UpConfig(manifests=tmp_path, state_dir=tmp_path / "state")
    assert "--no-tracing" not in plan_broker(config, LocalProfile(), context, {}).argv
    off = dataclasses.replace(config, tracing=False)
    assert "--no-tracing" in plan_broker(off, LocalProfile(), context, {}).argv
