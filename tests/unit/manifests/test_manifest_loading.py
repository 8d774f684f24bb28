"""A folder of Knative manifests loads into a Topology of frozen objects that know their origin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import (
    Broker,
    EnvFrom,
    EnvVar,
    EventAttribute,
    Ignored,
    KeyRef,
    ManifestError,
    load_topology,
)
from wire.knative import DeliverySpec, Destination, KReference

Write = Callable[[str, str], Path]

SHOP = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: shop
  annotations:
    eventing.knative.dev/broker.class: Kafka
spec:
  config:
    apiVersion: v1
    kind: ConfigMap
    name: kafka-broker-config
  delivery:
    retry: 3
    backoffPolicy: linear
    backoffDelay: PT1S
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: payment-order-created
  namespace: shop
spec:
  broker: default
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: payment
    uri: /events
  delivery:
    deadLetterSink:
      uri: http://deadletter.shop.svc.cluster.local/
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: payment
  namespace: shop
  labels:
    app.kubernetes.io/part-of: shop
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      containers:
        - image: ko.local/payment
          command: [gunicorn]
          args: ["services.payment.app:create_app()"]
          workingDir: /app
          ports:
            - containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: info
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: payment-db
                  key: url
            - name: CURRENCY
              valueFrom:
                configMapKeyRef:
                  name: shop-config
                  key: currency
                  optional: true
          envFrom:
            - configMapRef:
                name: shop-config
              prefix: SHOP_
            - secretRef:
                name: payment-db
                optional: true
"""

SUPPORT = """
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: outbox
  namespace: shop
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    selector:
      matchLabels:
        app.kubernetes.io/part-of: shop
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
  ceOverrides:
    extensions:
      origin: shop
---
apiVersion: eventing.knative.dev/v1beta3
kind: EventType
metadata:
  name: order-created
  namespace: shop
spec:
  reference:
    apiVersion: eventing.knative.dev/v1
    kind: Broker
    name: default
  description: An order was placed
  attributes:
    - {name: type, required: true, value: shop.order.created}
    - {name: source, required: true, value: /shop/order}
    - {name: specversion, required: true, value: "1.0"}
    - {name: id, required: true}
---
apiVersion: eventing.knative.dev/v1beta2
kind: EventType
metadata:
  name: payment-failed
  namespace: shop
spec:
  type: shop.payment.failed
  source: /shop/payment
  schema: https://shop.example/schemas/payment-failed.json
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
  namespace: shop
data:
  currency: EUR
---
apiVersion: v1
kind: Secret
metadata:
  name: payment-db
  namespace: shop
data:
  url: cG9zdGdyZXNxbDovL3BheW1lbnQ=
stringData:
  password: hunter2
"""


def test_a_valid_topology_loads_every_kind(write: Write, manifest_dir: Path) -> None:
    write("10-shop.yaml", SHOP)
    write("20-support.yml", SUPPORT)

    topology = load_topology(manifest_dir)

    (broker,) = topology.brokers
    assert (broker.namespace, broker.name, broker.broker_class) == ("shop", "default", "Kafka")
    assert broker.config == {"apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-broker-config"}
    assert broker.delivery == DeliverySpec(retry=3, backoff_policy="linear", backoff_delay=1.0)

    (trigger,) = topology.triggers
    assert trigger.broker == "default"
    assert trigger.subscriber == Destination(
        ref=KReference("serving.knative.dev/v1", "Service", "payment"), uri="/events"
    )
    assert trigger.filter is None
    assert trigger.filters is None
    assert trigger.spec["broker"] == "default"

    (service,) = topology.services
    assert service.labels == {"app.kubernetes.io/part-of": "shop"}
    assert service.template_annotations == {"autoscaling.knative.dev/min-scale": "1"}
    assert (service.container_concurrency, service.timeout_seconds) == (10, 30)
    assert service.command == ("gunicorn",)
    assert service.args == ("services.payment.app:create_app()",)
    assert service.working_dir == "/app"
    assert service.container_port == 8080
    assert service.env == (
        EnvVar(name="LOG_LEVEL", value="info"),
        EnvVar(name="DATABASE_URL", secret_key=KeyRef("payment-db", "url")),
        EnvVar(name="CURRENCY", config_map_key=KeyRef("shop-config", "currency", optional=True)),
    )
    assert service.env_from == (
        EnvFrom(source="ConfigMap", name="shop-config", prefix="SHOP_"),
        EnvFrom(source="Secret", name="payment-db", optional=True),
    )

    (binding,) = topology.sink_bindings
    assert binding.subject.match_labels == {"app.kubernetes.io/part-of": "shop"}
    assert binding.sink.ref == KReference("eventing.knative.dev/v1", "Broker", "default")
    assert binding.ce_overrides == {"origin": "shop"}

    created, failed = topology.event_types
    assert (created.type, created.source, created.description) == (
        "shop.order.created",
        "/shop/order",
        "An order was placed",
    )
    assert EventAttribute("id", required=True) in created.attributes
    assert created.reference == KReference("eventing.knative.dev/v1", "Broker", "default")
    assert (failed.api_version, failed.type, failed.schema) == (
        "eventing.knative.dev/v1beta2",
        "shop.payment.failed",
        "https://shop.example/schemas/payment-failed.json",
    )

    (config,) = topology.config_maps
    assert config.data == {"currency": "EUR"}
    (secret,) = topology.secrets
    assert secret.data == {"url": b"postgresql://payment", "password": b"hunter2"}
    assert topology.ignored == ()
    assert topology.not_ready == ()


def test_each_object_remembers_its_file_and_document_line(write: Write, manifest_dir: Path) -> None:
    path = write("10-shop.yaml", SHOP)
    topology = load_topology(manifest_dir)
    assert (topology.brokers[0].file, topology.brokers[0].line) == (str(path), 1)
    assert (topology.triggers[0].file, topology.triggers[0].line) == (str(path), 18)
    assert topology.services[0].line == 35


def test_files_are_read_recursively_in_sorted_order(write: Write, manifest_dir: Path) -> None:
    for name in ("b/20.yaml", "a/10.yml", "30.yaml", "05.yaml"):
        write(name, f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{len(name)}x\n")
    write("a/10.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n")
    write("05.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: zeroth\n")
    write("30.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: third\n")
    write("b/20.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\n")
    names = [item.name for item in load_topology(manifest_dir).config_maps]
    assert names == ["zeroth", "third", "first", "second"]


def test_empty_documents_comments_and_other_files_are_skipped(
    write: Write, manifest_dir: Path
) -> None:
    write(
        "10.yaml",
        """
        # a comment-only document
        ---
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: kept
        ---
        """,
    )
    write("README.md", "not: yaml: at: all")
    write(".backup.yaml", "kind: [broken")
    write(".git/config.yaml", "kind: [broken")
    assert [item.name for item in load_topology(manifest_dir).config_maps] == ["kept"]


def test_the_namespace_defaults_to_default(write: Write, manifest_dir: Path) -> None:
    write("10.yaml", "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n")
    (broker,) = load_topology(manifest_dir).brokers
    assert broker == Broker(kind="Broker", name="b", namespace="default", origin=broker.origin)
    assert broker.broker_class == "MTChannelBasedBroker"
    assert broker.delivery is None


def test_other_kinds_are_listed_as_ignored(write: Write, manifest_dir: Path) -> None:
    path = write(
        "00.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: postgres
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: postgres
        """,
    )
    topology = load_topology(manifest_dir)
    assert topology.ignored == (
        Ignored("v1", "Namespace", "shop", str(path), 1),
        Ignored("v1", "Service", "postgres", str(path), 6),
        Ignored("apps/v1", "Deployment", "postgres", str(path), 11),
    )
    assert topology.services == ()


def test_invalid_yaml_names_the_file_and_line(write: Write, manifest_dir: Path) -> None:
    path = write("10.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n")
    with pytest.raises(ManifestError, match="invalid YAML") as caught:
        load_topology(manifest_dir)
    assert caught.value.file == str(path)
    assert caught.value.line is not None
    assert str(caught.value).startswith(f"{path}:")


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not a directory"):
        load_topology(tmp_path / "nowhere")
