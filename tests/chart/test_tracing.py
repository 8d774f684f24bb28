"""Traces in the chart: services and Knative export to a collector, Jaeger (dev) behind it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.config import parse_tracing
from tests.chart.rendering import (
    CHART,
    TRACING,
    Document,
    by_name,
    chart_values,
    container,
    env_of,
    helm_template,
    knative_services,
    of_kind,
    render,
)
from tests.chart.test_render import validation_problems

NAMESPACE = "shop"
COLLECTOR = "shop-otel-collector"
JAEGER = "shop-jaeger"
OTEL_ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
}
# What Knative 1.19+ reads from config-observability for its own spans (knative.dev/pkg
# observability/tracing: NewFromMap); config-tracing's backend/zipkin-endpoint are gone.
KNATIVE_TRACING_KEYS = {"tracing-protocol", "tracing-endpoint", "tracing-sampling-rate"}
DIGEST = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")
EXTERNAL = "http://otel-collector.observability.svc.cluster.local:4318"


def service(docs: list[Document], name: str) -> Document:
    return by_name(of_kind(docs, "Service", ""))[name]


def deployment(docs: list[Document], name: str) -> Document:
    return by_name(of_kind(docs, "Deployment"))[name]


def port_url(svc: Document, port_name: str) -> str:
    """The in-cluster URL of one port of a core Service."""
    (port,) = [p for p in svc["spec"]["ports"] if p["name"] == port_name]
    meta = svc["metadata"]
    return f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:{port['port']}"


def pod_labels(docs: list[Document], name: str) -> dict[str, str]:
    return dict(deployment(docs, name)["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return set(selector["matchLabels"].items()) <= set(labels.items())


def collector_config(docs: list[Document]) -> dict[str, Any]:
    text = by_name(of_kind(docs, "ConfigMap"))[COLLECTOR]["data"]["config.yaml"]
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def tracing_objects(docs: list[Document]) -> list[str]:
    """Every object the tracing values render (the collector, Jaeger, Knative's ConfigMaps)."""
    return [
        f"{d['kind']} {d['metadata'].get('namespace')}/{d['metadata']['name']}"
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "tracing"
        or d["metadata"]["name"] == "config-observability"
    ]


def test_off_by_default_renders_nothing_new(helm: str) -> None:
    docs = render(helm)
    assert tracing_objects(docs) == []
    for name, ksvc in knative_services(docs).items():
        assert not {key for key in env_of(ksvc) if key.startswith("OTEL_")}, name
    # The other tracing values do nothing while tracing.enabled is false.
    unused = [
        "tracing.jaeger.enabled=true",
        "tracing.knative.configure=true",
        f"tracing.collector.exporterEndpoint={EXTERNAL}",
    ]
    assert helm_template(helm, set_values=unused).stdout == helm_template(helm).stdout


def test_every_service_exports_to_the_collector_as_itself(helm: str) -> None:
    docs = render(helm, set_values=[*TRACING, "tracing.samplingRate=0.25"])
    collector = port_url(service(docs, COLLECTOR), "otlp-http")
    assert collector == f"http://{COLLECTOR}.{NAMESPACE}.svc.cluster.local:4318"
    services = knative_services(docs)
    assert set(services) == set(chart_values()["services"])
    for name, ksvc in services.items():
        env = env_of(ksvc)
        assert {key: env[key] for key in OTEL_ENV} == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": name,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }, name


def test_the_kit_reads_the_charts_variables_as_meant(helm4: str) -> None:
    """kit.config, the services' side: the same collector, name and sampler, or no tracing."""
    docs = render(helm4, set_values=[*TRACING, "tracing.samplingRate=0.25"])
    collector = port_url(service(docs, COLLECTOR), "otlp-http")
    for name, ksvc in knative_services(docs).items():
        env = {key: value for key, value in env_of(ksvc).items() if isinstance(value, str)}
        config = parse_tracing(env, name)
        assert config is not None, name
        assert config.endpoint == f"{collector}/v1/traces", name
        assert config.service_name == name, name
        assert (config.sampler, config.sampler_ratio) == ("parentbased_traceidratio", 0.25), name
    for name, ksvc in knative_services(render(helm4)).items():
        env = {key: value for key, value in env_of(ksvc).items() if isinstance(value, str)}
        assert parse_tracing(env, name) is None, name


def test_a_services_own_env_overrides_a_tracing_setting(helm4: str) -> None:
    docs = render(helm4, set_values=[*TRACING, "services.order.env.OTEL_TRACES_SAMPLER_ARG=0.5"])
    services = knative_services(docs)
    names = [item["name"] for item in container(services["order"])["env"]]
    assert names.count("OTEL_TRACES_SAMPLER_ARG") == 1
    assert env_of(services["order"])["OTEL_TRACES_SAMPLER_ARG"] == "0.5"
    assert env_of(services["payment"])["OTEL_TRACES_SAMPLER_ARG"] == "1"  # samplingRate's default


def test_the_collector_receives_otlp_batches_and_exports_to_jaeger(helm: str) -> None:
    docs = render(helm, set_values=list(TRACING))
    config = collector_config(docs)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    assert pipeline["exporters"] == ["otlp_http/jaeger"]
    jaeger = port_url(service(docs, JAEGER), "otlp-http")
    assert config["exporters"]["otlp_http/jaeger"] == {"endpoint": jaeger}
    # Every component the pipeline names is configured.
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    # The collector reads that file, and listens where its Service sends.
    pod = deployment(docs, COLLECTOR)["spec"]["template"]["spec"]
    main = pod["containers"][0]
    (config_arg,) = [arg for arg in main["args"] if arg.startswith("--config=")]
    (mount,) = main["volumeMounts"]
    assert config_arg == f"--config={mount['mountPath']}/config.yaml"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == COLLECTOR
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports["otlp-http"] == 4318 and ports["otlp-grpc"] == 4317
    health = config["extensions"]["health_check"]["endpoint"]
    assert health.endswith(f":{ports['health']}")
    assert selects(
        {"matchLabels": service(docs, COLLECTOR)["spec"]["selector"]}, pod_labels(docs, COLLECTOR)
    )


def test_jaeger_keeps_traces_in_memory_and_serves_its_ui(helm4: str) -> None:
    docs = render(helm4, set_values=[*TRACING, "tracing.jaeger.maxTraces=500"])
    config = yaml.safe_load(by_name(of_kind(docs, "ConfigMap"))[JAEGER]["data"]["config.yaml"])
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    storage = config["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert config["extensions"]["jaeger_storage"]["backends"][storage] == {
        "memory": {"max_traces": 500}
    }
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == storage
    ports = {port["name"]: port["port"] for port in service(docs, JAEGER)["spec"]["ports"]}
    assert ports == {"otlp-http": 4318, "ui": 16686}
    main = deployment(docs, JAEGER)["spec"]["template"]["spec"]["containers"][0]
    assert main["args"] == ["--config=/etc/jaeger/config.yaml"]


def test_the_collector_exports_to_your_backend_without_jaeger(helm4: str) -> None:
    backend = "https://otlp.example.com"
    docs = render(
        helm4, set_values=["tracing.enabled=true", f"tracing.collector.exporterEndpoint={backend}/"]
    )
    config = collector_config(docs)
    assert config["exporters"] == {"otlp_http/backend": {"endpoint": backend}}
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp_http/backend"]
    assert JAEGER not in by_name(of_kind(docs, "Deployment"))
    assert "config-observability" not in by_name(of_kind(docs, "ConfigMap"))
    both = collector_config(
        render(helm4, set_values=[*TRACING, f"tracing.collector.exporterEndpoint={backend}"])
    )
    assert both["service"]["pipelines"]["traces"]["exporters"] == [
        "otlp_http/backend",
        "otlp_http/jaeger",
    ]


def test_with_an_endpoint_of_your_own_no_collector_is_rendered(helm: str) -> None:
    docs = render(
        helm,
        set_values=[
            "tracing.enabled=true",
            f"tracing.endpoint={EXTERNAL}/",
            "tracing.knative.configure=true",
        ],
    )
    assert [name for name in tracing_objects(docs) if "config-observability" not in name] == []
    for name, ksvc in knative_services(docs).items():
        assert env_of(ksvc)["OTEL_EXPORTER_OTLP_ENDPOINT"] == EXTERNAL, name
    for config in of_kind(docs, "ConfigMap"):
        if config["metadata"]["name"] == "config-observability":
            assert config["data"]["tracing-endpoint"] == f"{EXTERNAL}/v1/traces"


def test_every_image_is_pinned_by_digest(helm: str) -> None:
    docs = render(helm, set_values=list(TRACING))
    tracing = chart_values()["tracing"]
    images = {
        d["metadata"]["name"]: [c["image"] for c in d["spec"]["template"]["spec"]["containers"]]
        for d in of_kind(docs, "Deployment")
    }
    for name, values in ((COLLECTOR, tracing["collector"]), (JAEGER, tracing["jaeger"])):
        image = values["image"]
        assert images[name] == [f"{image['repository']}:{image['tag']}@{image['digest']}"], name
    for name, references in images.items():
        for reference in references:
            assert DIGEST.match(reference), (name, reference)


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_the_tracing_documents_validate(helm: str, value_set: str, knative_schemas: Path) -> None:
    assignments = ["namespace.create=true", "networkPolicy.services=true", *TRACING]
    if value_set == "production":
        assignments.append("tracing.collector.exporterEndpoint=https://otlp.example.com")
    docs = render(helm, value_set, assignments)
    # The collector's and Jaeger's ConfigMap, Service, Deployment and NetworkPolicy, and
    # config-observability in Knative's two namespaces.
    assert len(tracing_objects(docs)) == 10
    problems = [problem for doc in docs for problem in validation_problems(doc, knative_schemas)]
    assert not problems, "\n".join(problems)


def test_knative_is_pointed_at_the_collector_only_when_asked(helm: str) -> None:
    assert "config-observability" not in str(
        tracing_objects(
            render(helm, set_values=["tracing.enabled=true", "tracing.jaeger.enabled=true"])
        )
    )
    docs = render(helm, set_values=[*TRACING, "tracing.samplingRate=0.1"])
    configs = [
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "config-observability"
    ]
    assert {c["metadata"]["namespace"] for c in configs} == {"knative-eventing", "knative-serving"}
    collector = port_url(service(docs, COLLECTOR), "otlp-http")
    for config in configs:
        assert config["data"] == {
            "tracing-protocol": "http/protobuf",
            "tracing-endpoint": f"{collector}/v1/traces",
            "tracing-sampling-rate": "0.1",
        }
        assert set(config["data"]) == KNATIVE_TRACING_KEYS
        # Knative's ConfigMap stays when the release goes.
        assert config["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_network_policies_let_the_services_reach_the_collector_and_it_jaeger(helm4: str) -> None:
    docs = render(helm4, set_values=list(TRACING))
    policies = by_name(of_kind(docs, "NetworkPolicy"))
    service_pod = knative_services(docs)["order"]["spec"]["template"]["metadata"]["labels"]

    def admits(policy: Document, labels: dict[str, str], port: int) -> bool:
        """Whether a pod of the namespace with these labels may connect to `port`."""
        return any(
            port in {p["port"] for p in rule.get("ports", [])}
            and "namespaceSelector" not in source
            and "podSelector" in source
            and (not source["podSelector"] or selects(source["podSelector"], labels))
            for rule in policy["spec"]["ingress"]
            for source in rule["from"]
        )

    collector = policies[COLLECTOR]
    assert selects(collector["spec"]["podSelector"], pod_labels(docs, COLLECTOR))
    assert admits(collector, service_pod, 4318)
    assert not admits(collector, pod_labels(docs, JAEGER), 4318)
    knative = [
        s for r in collector["spec"]["ingress"] for s in r["from"] if "namespaceSelector" in s
    ]
    (expression,) = knative[0]["namespaceSelector"]["matchExpressions"]
    assert set(expression["values"]) >= {"knative-eventing", "knative-serving"}
    jaeger = policies[JAEGER]
    assert selects(jaeger["spec"]["podSelector"], pod_labels(docs, JAEGER))
    assert admits(jaeger, pod_labels(docs, COLLECTOR), 4318)
    assert not admits(jaeger, service_pod, 4318)
    # The UI is open within the namespace, as Mailpit's page is.
    assert admits(jaeger, service_pod, 16686)


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["tracing.collector.enabled=false"], "tracing.enabled needs a collector"),
        ([], "the collector needs somewhere to export to"),
        (
            [f"tracing.endpoint={EXTERNAL}", "tracing.jaeger.enabled=true"],
            "which tracing.endpoint replaces",
        ),
    ],
)
def test_tracing_values_that_leave_spans_nowhere_fail_with_a_clear_message(
    helm4: str, assignments: list[str], message: str
) -> None:
    result = helm_template(helm4, set_values=["tracing.enabled=true", *assignments])
    assert result.returncode != 0
    assert message in result.stderr


def test_the_chart_with_tracing_passes_strict_lint(helm: str) -> None:
    command = [helm, "lint", "--strict", str(CHART), "--set", "capabilitiesCheck=false"]
    for assignment in TRACING:
        command += ["--set", assignment]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
