"""The questions the runner asks a Topology: subscribers, sink bindings, delivery, environment."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import ManifestError, Topology, expand_references, load_topology
from wire.knative import CLUSTER_DEFAULT_DELIVERY, DeliverySpec, Destination

Write = Callable[[str, str], Path]


def _ksvc(name: str, labels: str = "{}", containers: str = "[{command: [run]}]") -> str:
    return (
        f"apiVersion: serving.knative.dev/v1\nkind: Service\n"
        f"metadata: {{name: {name}, namespace: shop, labels: {labels}}}\n"
        f"spec:\n  template:\n    spec:\n      containers: {containers}\n---\n"
    )


def _trigger(name: str, subscriber: str, broker: str = "default", delivery: str = "") -> str:
    text = (
        f"apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
        f"metadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  broker: {broker}\n  subscriber: {subscriber}\n"
    )
    if delivery:
        text += f"  delivery: {delivery}\n"
    return text + "---\n"


def _broker(name: str, delivery: str = "") -> str:
    text = (
        f"apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
        f"metadata: {{name: {name}, namespace: shop}}\n"
    )
    if delivery:
        text += f"spec:\n  delivery: {delivery}\n"
    return text + "---\n"


def _load(write: Write, manifest_dir: Path, text: str) -> Topology:
    write("10.yaml", text)
    return load_topology(manifest_dir)


KSVC_REF = "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: payment}}"


def test_a_subscriber_ref_resolves_to_the_knative_service(write: Write, manifest_dir: Path) -> None:
    topology = _load(
        write,
        manifest_dir,
        _ksvc("payment")
        + _broker("default")
        + _trigger("by-ref", KSVC_REF)
        + _trigger(
            "other-namespace",
            "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: payment,"
            " namespace: elsewhere}}",
        )
        + _trigger("by-uri", "{uri: http://payment.shop.svc.cluster.local/}")
        + _trigger("k8s-service", "{ref: {apiVersion: v1, kind: Service, name: payment}}"),
    )
    by_ref, other_namespace, by_uri, k8s_service = topology.triggers
    assert topology.subscriber_service(by_ref) == topology.service("shop", "payment")
    assert topology.subscriber_service(by_ref) is not None
    assert topology.subscriber_service(other_namespace) is None
    assert topology.subscriber_service(by_uri) is None
    assert topology.subscriber_service(k8s_service) is None


def test_triggers_of_a_broker_are_those_naming_it(write: Write, manifest_dir: Path) -> None:
    topology = _load(
        write,
        manifest_dir,
        _ksvc("payment")
        + _broker("default")
        + _broker("audit")
        + _trigger("one", KSVC_REF)
        + _trigger("two", KSVC_REF, broker="audit")
        + _trigger("three", KSVC_REF),
    )
    default, audit = topology.brokers
    assert [trigger.name for trigger in topology.triggers_of(default)] == ["one", "three"]
    assert [trigger.name for trigger in topology.triggers_of(audit)] == ["two"]
    assert topology.broker_of(topology.triggers[1]) == audit


def test_delivery_of_a_trigger_applies_knatives_rule(write: Write, manifest_dir: Path) -> None:
    topology = _load(
        write,
        manifest_dir,
        _ksvc("payment")
        + _broker("default")
        + _broker("with-dls", "{retry: 2, deadLetterSink: {uri: http://dls.example/}}")
        + _trigger("defaulted", KSVC_REF)
        + _trigger("own", KSVC_REF, broker="with-dls", delivery="{retry: 7}")
        + _trigger("broker-missing", KSVC_REF, broker="nowhere"),
    )
    defaulted, own, broker_missing = topology.triggers
    assert topology.delivery_of(defaulted) == CLUSTER_DEFAULT_DELIVERY
    assert topology.delivery_of(own) == DeliverySpec(
        retry=7, dead_letter_sink=Destination(uri="http://dls.example/")
    )
    assert topology.delivery_of(broker_missing) == CLUSTER_DEFAULT_DELIVERY


BINDING = """
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata: {{name: {name}, namespace: shop}}
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    {subject}
  sink: {{uri: http://broker.example/shop/default}}
---
"""


@pytest.mark.parametrize(
    ("subject", "bound"),
    [
        ("name: order", ["order"]),
        ("selector: {matchLabels: {tier: backend}}", ["order", "payment"]),
        (
            "selector: {matchLabels: {tier: backend}, "
            "matchExpressions: [{key: app, operator: In, values: [payment]}]}",
            ["payment"],
        ),
        (
            "selector: {matchExpressions: [{key: app, operator: NotIn, values: [order]}]}",
            ["payment", "web"],
        ),
        ("selector: {matchExpressions: [{key: tier, operator: Exists}]}", ["order", "payment"]),
        ("selector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}", ["web"]),
        ("name: order\n    namespace: elsewhere", []),
    ],
)
def test_a_sink_binding_selects_services_by_name_or_labels(
    write: Write, manifest_dir: Path, subject: str, bound: list[str]
) -> None:
    topology = _load(
        write,
        manifest_dir,
        _ksvc("order", "{app: order, tier: backend}")
        + _ksvc("payment", "{app: payment, tier: backend}")
        + _ksvc("web", "{app: web}")
        + BINDING.format(name="outbox", subject=subject),
    )
    selected = [service.name for service in topology.services if topology.sink_binding_for(service)]
    assert selected == bound


ENV_SERVICE = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: order, namespace: shop}
spec:
  template:
    spec:
      containers:
        - command: [gunicorn]
          envFrom:
            - configMapRef: {name: shop-config}
              prefix: SHOP_
            - secretRef: {name: missing-secret, optional: true}
            - secretRef: {name: order-db}
          env:
            - {name: LOG_LEVEL, value: info}
            - {name: SHOP_CURRENCY, value: CHF}
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: order-db, key: url}}
            - name: REGION
              valueFrom: {configMapKeyRef: {name: shop-config, key: region, optional: true}}
            - name: BANNER
              valueFrom: {configMapKeyRef: {name: shop-config, key: banner}}
            - {name: GREETING, value: "$(BANNER) from $(SHOP_CURRENCY), $$(literal), $(UNDEFINED)"}
            - {name: EMPTY}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config, namespace: shop}
data: {CURRENCY: EUR, banner: Hello}
---
apiVersion: v1
kind: Secret
metadata: {name: order-db, namespace: shop}
data: {url: cG9zdGdyZXNxbDovL29yZGVy}
stringData: {PASSWORD: hunter2}
"""


def test_resolve_env_builds_the_environment_as_the_kubelet_does(
    write: Write, manifest_dir: Path
) -> None:
    topology = _load(write, manifest_dir, ENV_SERVICE)
    (service,) = topology.services
    assert topology.resolve_env(service) == {
        "SHOP_CURRENCY": "CHF",  # env overrides envFrom
        "SHOP_banner": "Hello",
        "url": "postgresql://order",
        "PASSWORD": "hunter2",
        "LOG_LEVEL": "info",
        "DATABASE_URL": "postgresql://order",
        "BANNER": "Hello",
        "GREETING": "Hello from CHF, $(literal), $(UNDEFINED)",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("key: banner}", "key: motd}"),
            "spec.template.spec.containers[0].env[4].valueFrom.configMapKeyRef: env BANNER: "
            "ConfigMap shop/shop-config has no key 'motd'",
        ),
        (
            (
                "{secretKeyRef: {name: order-db, key: url}}",
                "{secretKeyRef: {name: gone, key: url}}",
            ),
            "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef: env DATABASE_URL: "
            "Secret shop/gone not found",
        ),
        (
            ("- configMapRef: {name: shop-config}", "- configMapRef: {name: nowhere}"),
            "spec.template.spec.containers[0].envFrom[0]: ConfigMap shop/nowhere not found",
        ),
    ],
)
def test_a_missing_non_optional_reference_names_the_service_and_variable(
    write: Write, manifest_dir: Path, edit: tuple[str, str], message: str
) -> None:
    old, new = edit
    assert old in ENV_SERVICE
    topology = _load(write, manifest_dir, ENV_SERVICE.replace(old, new))
    (service,) = topology.services
    with pytest.raises(ManifestError) as caught:
        topology.resolve_env(service)
    assert caught.value.obj == "Service shop/order"
    assert str(caught.value).endswith(
        f"Service shop/order: {message} (mark it optional: true if it may be absent)"
    )
    assert caught.value.file.endswith("10.yaml")


def test_a_binary_secret_cannot_become_an_environment_variable(
    write: Write, manifest_dir: Path
) -> None:
    binary = base64.b64encode(b"\xff\xfe").decode()
    topology = _load(write, manifest_dir, ENV_SERVICE.replace("{url: ", f"{{blob: {binary}, url: "))
    with pytest.raises(ManifestError, match="'blob' is not UTF-8 text"):
        topology.resolve_env(topology.services[0])


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("plain", "plain"),
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y2z"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$x", "$x"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("$$$(A)", "$1"),
    ],
)
def test_references_expand_like_kubernetes(text: str, expanded: str) -> None:
    assert expand_references(text, {"A": "1", "B": "2"}) == expanded
