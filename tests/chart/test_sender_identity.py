"""Sender identity in the chart: audiences, the subjects each service accepts, the EventPolicy.

The names come from wire/oidc/subjects.py, the code's one place for Knative's naming rules, so
the chart and the services cannot disagree about who a Trigger is.
"""

from __future__ import annotations

import pytest

from tests.chart.rendering import (
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
from wire.oidc.subjects import (
    TRIGGER_SUFFIX,
    child_name,
    parse_patterns,
    sink_binding_subject,
    trigger_subject,
)

NAMESPACE = "shop"
ON = ["senderIdentity.enabled=true"]
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_ACCESS = "/var/run/secrets/kubernetes.io/serviceaccount"
BROKER_CLASSES = ["default", "kafka", "rabbitmq", "production"]


def audience(service: str) -> str:
    return f"{service}.{NAMESPACE}.svc.cluster.local"


def allowed_subjects(ksvc: Document) -> list[str]:
    return [item for item in env_of(ksvc)["OIDC_ALLOWED_SUBJECTS"].split(",") if item]


def dead_letter_service(trigger: Document, broker: Document) -> str | None:
    """The service a Trigger's dead letters go to: its own delivery's sink, else the Broker's."""
    delivery = trigger["spec"].get("delivery") or broker["spec"].get("delivery") or {}
    sink = delivery.get("deadLetterSink")
    return None if sink is None else str(sink["ref"]["name"])


@pytest.mark.parametrize("value_set", BROKER_CLASSES)
def test_each_trigger_names_its_subscribers_audience_and_only_it_and_its_dead_letter_sink_accept_it(
    helm4: str, value_set: str
) -> None:
    # An override gives one Trigger a delivery of its own, whose dead-letter sink must keep the
    # audience too.
    docs = render(helm4, value_set, [*ON, "services.payment.delivery.retry=2"])
    services = knative_services(docs)
    (broker,) = of_kind(docs, "Broker")
    triggers = of_kind(docs, "Trigger")
    assert triggers
    for trigger in triggers:
        name = trigger["metadata"]["name"]
        subscriber = trigger["spec"]["subscriber"]
        target = subscriber["ref"]["name"]
        assert subscriber["audience"] == env_of(services[target])["OIDC_AUDIENCE"], name
        subject = trigger_subject(NAMESPACE, name)
        sink = dead_letter_service(trigger, broker)
        accepting = {
            service for service, ksvc in services.items() if subject in allowed_subjects(ksvc)
        }
        assert accepting == {target} | ({sink} if sink else set()), name
        if sink is not None:
            dead_letters = (trigger["spec"].get("delivery") or broker["spec"]["delivery"])[
                "deadLetterSink"
            ]
            assert dead_letters["audience"] == env_of(services[sink])["OIDC_AUDIENCE"], name
    assert "delivery" in by_name(triggers)["payment-order-created"]["spec"]


def test_each_service_accepts_exactly_the_triggers_that_deliver_to_it(helm4: str) -> None:
    docs = render(helm4, set_values=ON)
    triggers = of_kind(docs, "Trigger")
    dead_letters = chart_values()["broker"]["delivery"]["deadLetterService"]
    for name, ksvc in knative_services(docs).items():
        expected = {
            trigger_subject(NAMESPACE, t["metadata"]["name"])
            for t in triggers
            if t["spec"]["subscriber"]["ref"]["name"] == name or name == dead_letters
        }
        assert set(allowed_subjects(ksvc)) == expected, name
        assert "*" not in env_of(ksvc)["OIDC_ALLOWED_SUBJECTS"], name
    inventory = parse_patterns(env_of(knative_services(docs)["inventory"])["OIDC_ALLOWED_SUBJECTS"])
    intruder = trigger_subject(NAMESPACE, "payment-order-created")
    assert not any(pattern.matches(intruder) for pattern in inventory)


@pytest.mark.parametrize("value_set", BROKER_CLASSES)
def test_every_service_verifies_tokens_with_keys_it_reads_as_its_service_account(
    helm: str, value_set: str
) -> None:
    services = knative_services(render(helm, value_set, ON))
    for name, ksvc in services.items():
        env = env_of(ksvc)
        assert env["OIDC_AUDIENCE"] == audience(name), name
        assert env["OIDC_ISSUER"] == ISSUER, name
        assert env["OIDC_CA_FILE"] == f"{API_ACCESS}/ca.crt", name
        assert env["OIDC_DISCOVERY_TOKEN_FILE"] == f"{API_ACCESS}/token", name
        # The SinkBinding's token stays where Knative mounts it, the kit's default.
        assert "OIDC_TOKEN_FILE" not in env, name
        pod = ksvc["spec"]["template"]["spec"]
        # Not the automounted token: a projected one, at the path the kit is told.
        assert pod["automountServiceAccountToken"] is False, name
        mounts = {mount["name"]: mount for mount in container(ksvc)["volumeMounts"]}
        assert mounts["kube-api-access"] == {
            "name": "kube-api-access",
            "mountPath": API_ACCESS,
            "readOnly": True,
        }, name
        volumes = by_name_of_volumes(pod)
        sources = volumes["kube-api-access"]["projected"]["sources"]
        assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}} in sources
        assert {
            "configMap": {
                "name": "kube-root-ca.crt",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            }
        } in sources


def by_name_of_volumes(pod: Document) -> dict[str, Document]:
    return {volume["name"]: volume for volume in pod.get("volumes", [])}


def test_a_public_issuer_is_read_without_the_clusters_ca_or_a_service_account_token(
    helm4: str,
) -> None:
    issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
    assignments = [
        *ON,
        f"senderIdentity.issuer={issuer}",
        "senderIdentity.apiServerDiscovery=false",
    ]
    for name, ksvc in knative_services(render(helm4, set_values=assignments)).items():
        env = env_of(ksvc)
        assert env["OIDC_ISSUER"] == issuer and env["OIDC_AUDIENCE"] == audience(name), name
        assert "OIDC_CA_FILE" not in env and "OIDC_DISCOVERY_TOKEN_FILE" not in env, name
        assert "kube-api-access" not in by_name_of_volumes(ksvc["spec"]["template"]["spec"]), name


@pytest.mark.parametrize("value_set", BROKER_CLASSES)
def test_the_event_policy_lets_in_the_sink_bindings_and_the_replying_triggers_only(
    helm: str, value_set: str
) -> None:
    docs = render(helm, value_set, ON)
    (policy,) = of_kind(docs, "EventPolicy")
    (broker,) = of_kind(docs, "Broker")
    assert policy["spec"]["to"] == [
        {
            "ref": {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Broker",
                "name": broker["metadata"]["name"],
            }
        }
    ]
    sources = policy["spec"]["from"]
    refs = [source["ref"] for source in sources if "ref" in source]
    subs = [source["sub"] for source in sources if "sub" in source]
    assert len(refs) + len(subs) == len(sources)
    bindings = {binding["metadata"]["name"] for binding in of_kind(docs, "SinkBinding")}
    assert {(r["apiVersion"], r["kind"]) for r in refs} == {
        ("sources.knative.dev/v1", "SinkBinding")
    }
    assert sorted(r["name"] for r in refs) == sorted(bindings)
    services = chart_values()["services"]
    replying = {
        trigger_subject(NAMESPACE, t["metadata"]["name"])
        for t in of_kind(docs, "Trigger")
        if services[t["spec"]["subscriber"]["ref"]["name"]]["produces"]
    }
    assert set(subs) == replying
    assert trigger_subject(NAMESPACE, "viewer-all-events") not in subs  # the viewer never replies
    patterns = parse_patterns(subs)
    for stranger in (
        f"system:serviceaccount:{NAMESPACE}:default",
        f"system:serviceaccount:{NAMESPACE}:shop-services",
        sink_binding_subject(NAMESPACE, "intruder-broker"),
    ):
        assert not any(pattern.matches(stranger) for pattern in patterns), stranger
    assert not any(sub.endswith("*") for sub in subs)


def test_event_policy_from_replaces_the_computed_senders(helm4: str) -> None:
    subject = f"system:serviceaccount:{NAMESPACE}:my-producer"
    docs = render(helm4, set_values=[*ON, f"eventPolicy.from[0]={subject}"])
    (policy,) = of_kind(docs, "EventPolicy")
    assert policy["spec"]["from"] == [{"sub": subject}]


def test_the_event_policy_alone_names_the_same_senders(helm4: str) -> None:
    alone = of_kind(render(helm4, set_values=["eventPolicy.enabled=true"]), "EventPolicy")
    with_identity = of_kind(render(helm4, set_values=ON), "EventPolicy")
    assert alone == with_identity


def test_sender_identity_is_off_by_default(helm: str) -> None:
    docs = render(helm)
    assert not of_kind(docs, "EventPolicy")
    for trigger in of_kind(docs, "Trigger"):
        assert "audience" not in trigger["spec"]["subscriber"]
    (broker,) = of_kind(docs, "Broker")
    assert "audience" not in broker["spec"]["delivery"]["deadLetterSink"]
    for name, ksvc in knative_services(docs).items():
        assert not [key for key in env_of(ksvc) if key.startswith("OIDC_")], name
        assert "volumes" not in ksvc["spec"]["template"]["spec"], name


def test_the_topology_document_keeps_plain_destinations(helm4: str) -> None:
    """wire/topology.schema.json has no `audience`: the viewer's TOPOLOGY must not get one."""
    plain = env_of(knative_services(render(helm4))["viewer"])["TOPOLOGY"]
    on = env_of(knative_services(render(helm4, set_values=ON))["viewer"])["TOPOLOGY"]
    assert on == plain


def test_a_trigger_name_of_29_characters_is_the_longest_knative_does_not_hash(helm4: str) -> None:
    name = "notification-payment-declined"  # notification subscribing to payment.declined
    assert len(name) == 29 and child_name(name, TRIGGER_SUFFIX) == name + TRIGGER_SUFFIX
    docs = render(helm4, set_values=[*ON, "services.notification.subscribes[0]=payment.declined"])
    accepted = allowed_subjects(knative_services(docs)["notification"])
    assert accepted == [trigger_subject(NAMESPACE, name)]


def test_a_trigger_name_knative_would_hash_is_refused_with_the_reason(helm4: str) -> None:
    name = "notification-inventory-released"
    assert child_name(name, TRIGGER_SUFFIX) != name + TRIGGER_SUFFIX  # Knative hashes it
    result = helm_template(
        helm4, set_values=[*ON, "services.notification.subscribes[0]=inventory.released"]
    )
    assert result.returncode != 0
    assert f"Trigger {name} is longer than 29 characters" in result.stderr
    assert "kmeta.ChildName" in result.stderr
