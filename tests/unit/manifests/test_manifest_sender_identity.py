"""Sender identity in the manifests: audiences, EventPolicies and Knative's config-features."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import Features, ManifestError, NotReady, load_topology
from wire.oidc.subjects import sink_binding_subject, trigger_subject

Write = Callable[[str, str], Path]

BROKERS = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: shop
  labels: {tier: public}
spec:
  delivery:
    deadLetterSink:
      uri: http://deadletter.shop.svc.cluster.local/
      audience: deadletter.shop.svc.cluster.local
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: internal
  namespace: shop
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: other
"""

TRIGGERS = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: order-created
  namespace: shop
spec:
  broker: default
  subscriber:
    uri: http://order.shop.svc.cluster.local/
    audience: order.shop.svc.cluster.local
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: order-failed
  namespace: shop
spec:
  broker: default
  subscriber:
    uri: http://order.shop.svc.cluster.local/
  delivery:
    deadLetterSink:
      uri: http://audit.shop.svc.cluster.local/
      audience: audit.shop.svc.cluster.local
"""

BINDING = """
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: relay
  namespace: shop
spec:
  subject: {apiVersion: apps/v1, kind: Deployment, name: relay}
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
"""

POLICIES = """
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: z-everything
  namespace: shop
spec:
  from:
    - sub: system:serviceaccount:shop:*
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: by-name
  namespace: shop
spec:
  to:
    - ref: {apiVersion: eventing.knative.dev/v1, kind: broker, name: DEFAULT}
  from:
    - ref: {apiVersion: sources.knative.dev/v1, kind: SinkBinding, name: relay}
    - ref: {apiVersion: eventing.knative.dev/v1, kind: Trigger, name: order-created}
    - ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: tick, namespace: ops}
  filters:
    - prefix: {type: order.}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: by-labels
  namespace: shop
spec:
  to:
    - selector:
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        matchExpressions:
          - {key: tier, operator: In, values: [public]}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: no-labels
  namespace: shop
spec:
  to:
    - selector: {apiVersion: eventing.knative.dev/v1, kind: Broker}
"""


def test_audiences_of_subscribers_and_dead_letter_sinks_are_read(
    write: Write, manifest_dir: Path
) -> None:
    write("brokers.yaml", BROKERS)
    write("triggers.yaml", TRIGGERS)
    topology = load_topology(manifest_dir)
    created, failed = topology.triggers
    assert created.subscriber.audience == "order.shop.svc.cluster.local"
    assert failed.subscriber.audience is None
    # The trigger's own sink, else the broker's, each with its audience.
    created_sink = topology.delivery_of(created).dead_letter_sink
    failed_sink = topology.delivery_of(failed).dead_letter_sink
    assert created_sink is not None and failed_sink is not None
    assert created_sink.audience == "deadletter.shop.svc.cluster.local"
    assert failed_sink.audience == "audit.shop.svc.cluster.local"


def test_the_policies_that_apply_to_a_broker_are_found_by_ref_selector_or_namespace_and_sorted(
    write: Write, manifest_dir: Path
) -> None:
    for name, text in (("b.yaml", BROKERS), ("t.yaml", TRIGGERS), ("s.yaml", BINDING)):
        write(name, text)
    write("policies.yaml", POLICIES)
    topology = load_topology(manifest_dir)
    default, internal, elsewhere = topology.brokers
    applying = {
        broker.label: [policy.name for policy in topology.event_policies_for(broker)]
        for broker in topology.brokers
    }
    assert applying == {
        default.label: ["by-labels", "by-name", "z-everything"],
        internal.label: ["z-everything"],
        elsewhere.label: [],
    }


def test_from_refs_resolve_to_the_subjects_knative_gives_their_objects(
    write: Write, manifest_dir: Path
) -> None:
    for name, text in (("b.yaml", BROKERS), ("t.yaml", TRIGGERS), ("s.yaml", BINDING)):
        write(name, text)
    write("policies.yaml", POLICIES)
    topology = load_topology(manifest_dir)
    by_name = next(policy for policy in topology.event_policies if policy.name == "by-name")
    assert topology.senders_of(by_name) == (
        sink_binding_subject("shop", "relay"),
        trigger_subject("shop", "order-created"),
        "system:serviceaccount:ops:tick-oidc-sources.knative.dev-pingsource",
    )
    assert by_name.filters == ({"prefix": {"type": "order."}},)
    everything = next(p for p in topology.event_policies if p.name == "z-everything")
    assert topology.senders_of(everything) == ("system:serviceaccount:shop:*",)


def test_a_policy_naming_a_missing_sink_binding_is_not_ready_and_applies_to_nothing(
    write: Write, manifest_dir: Path
) -> None:
    write("b.yaml", BROKERS)
    write(
        "p.yaml",
        """
        apiVersion: eventing.knative.dev/v1alpha1
        kind: EventPolicy
        metadata: {name: relay-only, namespace: shop}
        spec:
          from:
            - ref: {apiVersion: sources.knative.dev/v1, kind: SinkBinding, name: relay}
        """,
    )
    topology = load_topology(manifest_dir)
    assert topology.event_policies_for(topology.brokers[0]) == ()
    assert topology.not_ready == (
        NotReady(
            "EventPolicy",
            "shop",
            "relay-only",
            "SubjectsNotResolved",
            "spec.from: SinkBinding shop/relay does not exist (the policy applies to nothing)",
        ),
    )


POLICY = """
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: p
  namespace: shop
spec:
"""


@pytest.mark.parametrize(
    ("spec", "line", "message"),
    [
        (
            "  from:\n    - sub: a\n      ref: {apiVersion: v1, kind: X, name: y}\n",
            8,
            "spec.from[0]: expected exactly one of ref and sub, got both",
        ),
        (
            "  from:\n    - sub: ''\n",
            8,
            "spec.from[0]: expected exactly one of ref and sub, got neither",
        ),
        (
            "  from:\n    - sub: 'system:*:x'\n",
            8,
            "spec.from[0].sub: 'system:*:x': '*' is only allowed as the last character",
        ),
        ("  from:\n    - ref: {kind: X, name: y}\n", 8, "spec.from[0].ref.apiVersion: required"),
        (
            "  to:\n    - ref: {apiVersion: eventing.knative.dev/v1, kind: Broker}\n",
            8,
            "spec.to[0].ref.name: required",
        ),
        ("  to:\n    - {}\n", 8, "spec.to[0]: expected exactly one of ref and selector"),
        (
            "  form:\n    - sub: a\n",
            7,
            "spec.form: unknown field (known: to, from, filters)",
        ),
        (
            "  filters:\n    - exact: {type: a, source: b}\n",
            8,
            "spec.filters[0].exact: has 2 attributes; Knative allows one per filter (use 'all')",
        ),
    ],
)
def test_an_invalid_event_policy_stops_startup_naming_its_field(
    write: Write, manifest_dir: Path, spec: str, line: int, message: str
) -> None:
    path = write("p.yaml", POLICY + spec)
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert str(caught.value) == f"{path}:{line}: EventPolicy shop/p: {message}"


def config_features(data: str, namespace: str = "knative-eventing") -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: config-features, namespace: {namespace}}}\ndata:\n{data}"
    )


@pytest.mark.parametrize(
    ("text", "features"),
    [
        (None, Features(False, "Allow-Same-Namespace")),
        (
            config_features(
                "  authentication-oidc: Enabled\n  default-authorization-mode: deny-all\n"
            ),
            Features(True, "Deny-All"),
        ),
        (config_features("  _example: |\n    long text\n"), Features()),
        (config_features("  authentication-oidc: enabled\n", "shop"), Features()),
        (
            config_features("  default-authorization-mode: Allow-All\n"),
            Features(False, "Allow-All"),
        ),
    ],
)
def test_config_features_turn_sender_identity_on_and_set_the_default_mode(
    write: Write, manifest_dir: Path, text: str | None, features: Features
) -> None:
    write("b.yaml", BROKERS)
    if text is not None:
        write("features.yaml", text)
    assert load_topology(manifest_dir).features == features


def test_an_unknown_authorization_mode_is_refused_rather_than_allowing_all(
    write: Write, manifest_dir: Path
) -> None:
    path = write("features.yaml", config_features("  default-authorization-mode: Deny-Everyone\n"))
    with pytest.raises(ManifestError) as caught:
        load_topology(manifest_dir)
    assert str(caught.value) == (
        f"{path}:5: ConfigMap knative-eventing/config-features: data.default-authorization-mode: "
        "'Deny-Everyone' is not one of Allow-All, Allow-Same-Namespace, Deny-All"
    )
