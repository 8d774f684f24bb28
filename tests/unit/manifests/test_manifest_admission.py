"""Objects Knative's admission webhooks would refuse stop startup with file, line, object, field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import ManifestError, NotReady, load_topology

Write = Callable[[str, str], Path]

TRIGGER = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: payment-order-created
  namespace: shop
spec:
  broker: default
  subscriber:
    uri: http://payment.shop.svc.cluster.local/
"""

KSVC = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: order
  namespace: shop
spec:
  template:
    spec:
      containers:
        - command: [gunicorn]
"""


def _edit(base: str, old: str, new: str) -> str:
    assert old in base
    return base.replace(old, new)


CASES = [
    pytest.param(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  namespace: shop\n",
        3,
        "Broker shop/<unnamed>: metadata.name: required",
        id="missing-name",
    ),
    pytest.param(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\n",
        1,
        "Broker default/<unnamed>: metadata.name: required",
        id="missing-metadata",
    ),
    pytest.param(
        _edit(TRIGGER, "  broker: default\n", ""),
        6,
        "Trigger shop/payment-order-created: spec.broker: required",
        id="trigger-without-broker",
    ),
    pytest.param(
        _edit(TRIGGER, "  subscriber:\n    uri: http://payment.shop.svc.cluster.local/\n", ""),
        6,
        "Trigger shop/payment-order-created: spec.subscriber: required (a ref and/or a uri)",
        id="trigger-without-subscriber",
    ),
    pytest.param(
        _edit(TRIGGER, "    uri: http://payment.shop.svc.cluster.local/", "    uri: ''"),
        8,
        "Trigger shop/payment-order-created: spec.subscriber: "
        "expected at least one of ref and uri, got neither",
        id="subscriber-with-neither-ref-nor-uri",
    ),
    pytest.param(
        _edit(TRIGGER, "http://payment.shop.svc.cluster.local/", "/events"),
        9,
        "Trigger shop/payment-order-created: spec.subscriber.uri: "
        "'/events': a URI without a ref must be absolute",
        id="subscriber-relative-uri",
    ),
    pytest.param(
        _edit(
            TRIGGER,
            "    uri: http://payment.shop.svc.cluster.local/",
            "    ref: {apiVersion: serving.knative.dev/v1, kind: Service}",
        ),
        9,
        "Trigger shop/payment-order-created: spec.subscriber.ref.name: required",
        id="subscriber-ref-without-name",
    ),
    pytest.param(
        TRIGGER + "  delivery:\n    backoffDelay: PT\n",
        11,
        "Trigger shop/payment-order-created: spec.delivery.backoffDelay: "
        "invalid ISO-8601 duration: 'PT': expected at least one of Y, M, W, D, H, M or S",
        id="bad-backoff-delay",
    ),
    pytest.param(
        TRIGGER + "  delivery:\n    timeout: 30s\n",
        11,
        "Trigger shop/payment-order-created: spec.delivery.timeout: "
        "invalid ISO-8601 duration: '30s': expected 'P' at the start (e.g. 'PT0.2S')",
        id="bad-timeout",
    ),
    pytest.param(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
        "spec:\n  delivery:\n    backoffPolicy: fibonacci\n",
        7,
        "Broker default/default: spec.delivery.backoffPolicy: "
        "invalid value 'fibonacci': expected one of linear, exponential",
        id="bad-backoff-policy",
    ),
    pytest.param(
        TRIGGER + "  delivery:\n    retry: -1\n",
        11,
        "Trigger shop/payment-order-created: spec.delivery.retry: "
        "invalid value -1: must not be negative",
        id="negative-retry",
    ),
    pytest.param(
        TRIGGER + "  delivery:\n    retryAfterMax: -PT5S\n",
        11,
        "Trigger shop/payment-order-created: spec.delivery.retryAfterMax: "
        "invalid ISO-8601 duration: '-PT5S': negative durations are not allowed",
        id="negative-retry-after-max",
    ),
    pytest.param(
        TRIGGER + "  delivery:\n    deadLetterSink:\n      uri: dls\n",
        12,
        "Trigger shop/payment-order-created: spec.delivery.deadLetterSink.uri: "
        "'dls': a URI without a ref must be absolute",
        id="relative-dead-letter-uri",
    ),
    pytest.param(
        _edit(KSVC, "        - command: [gunicorn]", "        - env:\n            - name: PORT"),
        11,
        "Service shop/order: spec.template.spec.containers[0].env[0].name: "
        "'PORT' is a reserved environment variable",
        id="reserved-env-port",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - env:\n            - {name: A, value: b}\n            - name: K_SERVICE",
        ),
        12,
        "Service shop/order: spec.template.spec.containers[0].env[1].name: "
        "'K_SERVICE' is a reserved environment variable",
        id="reserved-env-k-service",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - ports:\n            - containerPort: 8012",
        ),
        11,
        "Service shop/order: spec.template.spec.containers[0].ports[0].containerPort: "
        "8012 is a port reserved by Knative",
        id="reserved-port",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - ports: [{containerPort: 80}, {containerPort: 81}]",
        ),
        10,
        "Service shop/order: spec.template.spec.containers[0].ports: "
        "more than one container port is set",
        id="two-ports",
    ),
    pytest.param(
        _edit(KSVC, "      containers:\n        - command: [gunicorn]\n", "      containers: []\n"),
        9,
        "Service shop/order: spec.template.spec.containers: "
        "required (one container with command and args)",
        id="no-containers",
    ),
    pytest.param(
        _edit(KSVC, "      containers:", "      containerConcurrency: 5000\n      containers:"),
        9,
        "Service shop/order: spec.template.spec.containerConcurrency: "
        "5000 is outside 0..1000 (0 means unlimited)",
        id="container-concurrency-too-high",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - env:\n            - name: A\n              value: x\n"
            "              valueFrom: {configMapKeyRef: {name: c, key: k}}",
        ),
        12,
        "Service shop/order: spec.template.spec.containers[0].env[0].value: "
        "may not be set together with valueFrom",
        id="value-and-value-from",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - env:\n            - name: POD\n"
            "              valueFrom: {fieldRef: {fieldPath: metadata.name}}",
        ),
        12,
        "Service shop/order: spec.template.spec.containers[0].env[0].valueFrom.fieldRef: "
        "not supported by `shop up` (only configMapKeyRef and secretKeyRef)",
        id="field-ref",
    ),
    pytest.param(
        _edit(
            KSVC,
            "        - command: [gunicorn]",
            "        - env:\n            - name: DEBUG\n              value: true",
        ),
        12,
        "Service shop/order: spec.template.spec.containers[0].env[0].value: "
        "expected a string, not the boolean true (quote it to make it a string)",
        id="unquoted-boolean-env-value",
    ),
    pytest.param(
        _edit(KSVC, "  name: order", "  name: 2order"),
        4,
        "Service shop/2order: metadata.name: "
        "'2order' must be a DNS-1035 label (lower-case letters, digits and '-')",
        id="ksvc-name-not-dns-1035",
    ),
    pytest.param(
        _edit(KSVC, "serving.knative.dev/v1", "serving.knative.dev/v1beta1"),
        1,
        "Service shop/order: apiVersion: serving.knative.dev/v1beta1 is not served "
        "(use serving.knative.dev/v1)",
        id="unserved-version",
    ),
    pytest.param(
        "apiVersion: v1\nmetadata:\n  name: x\n",
        1,
        "kind: required",
        id="missing-kind",
    ),
    pytest.param(
        "- apiVersion: v1\n",
        1,
        "expected an object, not a list",
        id="document-is-a-list",
    ),
    pytest.param(
        TRIGGER + "  broker: other\n",
        10,
        "Trigger shop/payment-order-created: spec.broker: duplicate key",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: not base64!\n",
        6,
        "Secret default/s: data.password: is not valid base64",
        id="secret-bad-base64",
    ),
    pytest.param(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  replicas: 3\n",
        6,
        "ConfigMap default/c: data.replicas: "
        "expected a string, not the number 3 (quote it to make it a string)",
        id="config-map-number",
    ),
    pytest.param(
        "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata:\n  name: sb\n"
        "spec:\n  subject:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n"
        "    name: order\n    selector: {matchLabels: {a: b}}\n  sink: {uri: http://x/}\n",
        6,
        "SinkBinding default/sb: spec.subject: expected exactly one of name and selector",
        id="sink-binding-name-and-selector",
    ),
    pytest.param(
        "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata:\n  name: sb\n"
        "spec:\n  subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: order}\n"
        "  sink: {uri: http://x/}\n  ceOverrides:\n    extensions:\n      Origin: shop\n",
        10,
        "SinkBinding default/sb: spec.ceOverrides.extensions.Origin: "
        "attribute name 'Origin' must consist of lower-case letters a-z and digits 0-9",
        id="sink-binding-bad-extension-name",
    ),
    pytest.param(
        "apiVersion: eventing.knative.dev/v1beta3\nkind: EventType\nmetadata:\n  name: et\n"
        "spec:\n  attributes:\n    - {name: type, value: shop.order.created}\n",
        6,
        "EventType default/et: spec.attributes: missing definitions of: source, specversion, id",
        id="event-type-missing-attributes",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), CASES)
def test_invalid_objects_stop_startup_naming_file_line_object_and_field(
    write: Write, manifest_dir: Path, text: str, line: int, message: str
) -> None:
    path = write("30-objects.yaml", text)
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert str(caught.value) == f"{path}:{line}: {message}"
    assert (caught.value.file, caught.value.line) == (str(path), line)


def test_the_same_object_twice_is_an_error_naming_both_places(
    write: Write, manifest_dir: Path
) -> None:
    first = write(
        "10-broker.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n",
    )
    second = write(
        "20-again.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: default\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n",
    )
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert str(caught.value) == (
        f"{second}:9: Broker default/default: metadata.name: defined twice (first at {first}:1)"
    )


def test_same_names_in_other_namespaces_or_kinds_are_not_duplicates(
    write: Write, manifest_dir: Path
) -> None:
    write(
        "10.yaml",
        """
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        metadata: {name: default, namespace: a}
        ---
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        metadata: {name: default, namespace: b}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: default, namespace: a}
        """,
    )
    topology = load_topology(manifest_dir)
    assert [broker.namespace for broker in topology.brokers] == ["a", "b"]


def test_unresolvable_references_are_runtime_conditions_not_admission_errors(
    write: Write, manifest_dir: Path
) -> None:
    write(
        "10.yaml",
        """
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: audit, namespace: shop}
        spec:
          broker: missing
          subscriber:
            ref: {apiVersion: apps/v1, kind: Deployment, name: audit}
          delivery:
            deadLetterSink:
              ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: deadletter}
        ---
        apiVersion: sources.knative.dev/v1
        kind: SinkBinding
        metadata: {name: outbox, namespace: shop}
        spec:
          subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: order}
          sink:
            ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: missing}
        """,
    )
    topology = load_topology(manifest_dir)
    assert topology.not_ready == (
        NotReady(
            "Trigger", "shop", "audit", "BrokerDoesNotExist", "Broker shop/missing does not exist"
        ),
        NotReady(
            "Trigger",
            "shop",
            "audit",
            "SubscriberNotResolved",
            "Deployment shop/audit (apps/v1) is not a Knative Service or Broker "
            "defined in the manifests",
        ),
        NotReady(
            "Trigger",
            "shop",
            "audit",
            "DeadLetterSinkNotResolved",
            "Service shop/deadletter (serving.knative.dev/v1) is not a Knative Service or Broker "
            "defined in the manifests",
        ),
        NotReady(
            "SinkBinding",
            "shop",
            "outbox",
            "SinkNotResolved",
            "Broker shop/missing (eventing.knative.dev/v1) is not a Knative Service or Broker "
            "defined in the manifests",
        ),
    )
