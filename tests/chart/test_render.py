"""What the chart renders: valid documents, and the wiring the system's contract asks for."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from kit.migrate import service_history
from tests.chart.rendering import (
    SENDER_IDENTITY,
    VALUE_SETS,
    Document,
    by_name,
    chart_values,
    container,
    env_of,
    group_of,
    helm_template,
    knative_services,
    of_kind,
    render,
    render_module,
)

KNATIVE_GROUPS = {
    "serving.knative.dev",
    "eventing.knative.dev",
    "sources.knative.dev",
    "messaging.knative.dev",
    "flows.knative.dev",
    "sinks.knative.dev",
}
GUNICORN_CONF = "python:kit.gunicorn_conf"


@cache
def _knative_validator(schemas: Path, group: str, kind: str, version: str) -> Any:
    path = schemas / f"{group}_{kind.lower()}_{version}.json"
    if not path.is_file():
        return None
    return jsonschema.Draft7Validator(json.loads(path.read_text(encoding="utf-8")))


def validation_problems(doc: Document, knative_schemas: Path) -> list[str]:
    """Every schema problem of one document; a kind without a schema is a problem too."""
    kind = str(doc.get("kind"))
    name = f"{kind} {doc.get('metadata', {}).get('name')}"
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    if group in KNATIVE_GROUPS:
        validator = _knative_validator(knative_schemas, group, kind, version)
        if validator is None:
            return [f"{name}: no schema for {doc.get('apiVersion')} {kind} in {knative_schemas}"]
        return [
            f"{name}: {'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, render_module().KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: {doc.get('apiVersion')} {kind} is not a Kubernetes kind known to 1.33"]
    except kubernetes_validate.ValidationError as error:
        return [f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}"]
    return []


@pytest.mark.parametrize(
    "identity", [[], list(SENDER_IDENTITY)], ids=["no-identity", "sender-identity"]
)
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rendered_document_validates(
    helm: str, value_set: str, identity: list[str], knative_schemas: Path
) -> None:
    docs = render(helm, value_set, ["namespace.create=true", "eventPolicy.enabled=true", *identity])
    problems = [problem for doc in docs for problem in validation_problems(doc, knative_schemas)]
    assert not problems, "\n".join(problems)
    assert len(docs) > 20


def test_a_document_without_a_schema_fails_validation(knative_schemas: Path) -> None:
    unknown = {"apiVersion": "sources.knative.dev/v1", "kind": "ApiServerSource"}
    foreign = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation_problems(unknown, knative_schemas)
    assert validation_problems(foreign, knative_schemas)


def test_a_misspelled_field_fails_validation(helm4: str, knative_schemas: Path) -> None:
    trigger = of_kind(render(helm4), "Trigger")[0]
    trigger["spec"]["brokr"] = trigger["spec"].pop("broker")
    assert validation_problems(trigger, knative_schemas)


def test_rendering_without_the_knative_apis_fails_with_a_clear_message(helm: str) -> None:
    result = helm_template(helm, api_versions=())
    assert result.returncode != 0
    assert "does not serve serving.knative.dev/v1" in result.stderr
    assert "--api-versions" in result.stderr


def test_every_knative_service_runs_its_gunicorn_command(helm: str) -> None:
    services = knative_services(render(helm))
    assert set(services) == set(chart_values()["services"])
    for name, ksvc in services.items():
        main = container(ksvc)
        assert main["command"] == ["gunicorn"], name
        assert main["args"] == ["-c", GUNICORN_CONF, f"services.{name}.app:create_app()"], name
        assert main["ports"] == [{"name": "http1", "containerPort": 8080}], name


def test_knative_services_run_restricted_with_probes_resources_and_scale_bounds(
    helm4: str,
) -> None:
    for name, ksvc in knative_services(render(helm4)).items():
        main = container(ksvc)
        context = main["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert set(main["resources"]) == {"requests", "limits"}, name
        annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
        assert {"autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale"} <= set(
            annotations
        ), name
        assert ksvc["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("value_set", "dialect"),
    [("default", "filters"), ("kafka", "filters"), ("rabbitmq", "filter")],
)
def test_triggers_filter_on_type_in_the_form_the_broker_class_applies(
    helm4: str, value_set: str, dialect: str
) -> None:
    triggers = by_name(of_kind(render(helm4, value_set), "Trigger"))
    payment = triggers["payment-order-created"]["spec"]
    if dialect == "filters":
        assert payment["filters"] == [{"exact": {"type": "order.created"}}]
        assert "filter" not in payment
    else:
        assert payment["filter"] == {"attributes": {"type": "order.created"}}
        assert "filters" not in payment
    viewer = triggers["viewer-all-events"]["spec"]
    assert "filter" not in viewer and "filters" not in viewer


def test_the_broker_dead_letters_to_the_deadletter_service(helm: str) -> None:
    (broker,) = of_kind(render(helm), "Broker")
    assert broker["metadata"]["name"] == "default"
    annotations = broker["metadata"]["annotations"]
    assert annotations["eventing.knative.dev/broker.class"] == "MTChannelBasedBroker"
    delivery = broker["spec"]["delivery"]
    assert delivery["deadLetterSink"] == {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "deadletter"}
    }
    assert delivery["retry"] >= 1 and delivery["backoffPolicy"] == "exponential"


def test_trigger_delivery_overrides_are_merged_over_the_broker_defaults(helm4: str) -> None:
    docs = render(
        helm4,
        set_values=[
            "services.payment.delivery.backoffDelay=PT1S",
            r"services.payment.triggerDelivery.order\.created.retry=1",
        ],
    )
    triggers = by_name(of_kind(docs, "Trigger"))
    created = triggers["payment-order-created"]["spec"]["delivery"]
    cancelled = triggers["payment-order-cancelled"]["spec"]["delivery"]
    assert created["retry"] == 1 and created["backoffDelay"] == "PT1S"
    assert cancelled["retry"] == 5 and cancelled["backoffDelay"] == "PT1S"
    # The rest comes from the broker, dead-letter sink included (a trigger's delivery replaces
    # the broker's wholesale in Knative).
    for delivery in (created, cancelled):
        assert delivery["backoffPolicy"] == "exponential"
        assert delivery["deadLetterSink"]["ref"]["name"] == "deadletter"
    assert "delivery" not in triggers["order-payment-authorized"]["spec"]


def test_sink_bindings_give_the_producers_the_broker(helm: str) -> None:
    bindings = of_kind(render(helm), "SinkBinding")
    subjects = {binding["spec"]["subject"]["name"] for binding in bindings}
    assert subjects == {"customer", "order", "notification", "deadletter", "viewer"}
    for binding in bindings:
        assert binding["spec"]["subject"]["kind"] == "Service"
        assert binding["spec"]["sink"]["ref"]["kind"] == "Broker"
        assert binding["spec"]["sink"]["ref"]["name"] == "default"


def test_event_types_carry_their_schema_reference(helm4: str) -> None:
    for event_type in of_kind(render(helm4), "EventType"):
        name = event_type["metadata"]["name"]
        attributes = {item["name"]: item for item in event_type["spec"]["attributes"]}
        assert attributes["type"]["value"] == name
        assert attributes["dataschema"]["value"] == f"urn:shop:schema:{name}"
        assert {"specversion", "id", "type", "source"} <= set(attributes)
        assert event_type["spec"]["reference"]["kind"] == "Broker"


def test_default_values_run_postgresql_with_one_database_per_service(helm4: str) -> None:
    docs = render(helm4)
    secrets = by_name(of_kind(docs, "Secret"))
    urls = secrets["shop-database"]["stringData"]
    stateful = {name for name, service in chart_values()["services"].items() if service["database"]}
    assert set(urls) == stateful
    for name, url in urls.items():
        assert url.startswith("postgresql://shop:") and url.endswith(f":5432/{name}")
    script = by_name(of_kind(docs, "ConfigMap"))["shop-postgresql-init"]["data"]
    assert all(f" {name}" in next(iter(script.values())) for name in stateful)
    for name, ksvc in knative_services(docs).items():
        env = env_of(ksvc)
        if name in stateful:
            assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "shop-database", "key": name}}
        else:
            assert "DATABASE_URL" not in env
    assert env_of(knative_services(docs)["notification"])["SMTP_HOST"].startswith("shop-mailpit.")


def test_by_default_every_service_migrates_its_schema_as_it_starts(helm: str) -> None:
    for name, ksvc in knative_services(render(helm)).items():
        assert "initContainers" not in ksvc["spec"]["template"]["spec"], name
        assert "MIGRATE_AT_START" not in env_of(ksvc), name


@pytest.mark.parametrize(("secret", "expected"), [("", "shop-database"), ("shop-ddl", "shop-ddl")])
def test_an_init_container_migrates_before_a_service_that_only_checks_its_schema(
    helm: str, knative_schemas: Path, secret: str, expected: str
) -> None:
    assignments = ["migrations.mode=initContainer", f"migrations.existingSecret={secret}"]
    docs = render(helm, set_values=assignments)
    problems = [problem for doc in docs for problem in validation_problems(doc, knative_schemas)]
    assert not problems, "\n".join(problems)
    stateful = {name for name, service in chart_values()["services"].items() if service["database"]}
    for name, ksvc in knative_services(docs).items():
        pod = ksvc["spec"]["template"]["spec"]
        if name not in stateful:
            assert "initContainers" not in pod and "MIGRATE_AT_START" not in env_of(ksvc), name
            continue
        (init,) = pod["initContainers"]
        assert [init["command"], init["args"]] == [
            ["python"],
            ["-m", "kit.migrate", "upgrade", "--service", name],
        ], name
        assert init["image"] == container(ksvc)["image"], name
        assert init["env"] == [
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": expected, "key": name}}}
        ], name
        assert init["securityContext"] == container(ksvc)["securityContext"], name
        assert init["resources"] == container(ksvc)["resources"], name
        assert env_of(ksvc)["MIGRATE_AT_START"] == "0", name
        # What the init container runs exists: the service's history, as the CLI finds it.
        assert service_history(name).name == name


def test_production_values_use_the_external_database_and_mail_server(helm: str) -> None:
    docs = render(helm, "production")
    assert not of_kind(docs, "Deployment")
    assert not of_kind(docs, "Secret")
    services = knative_services(docs)
    env = env_of(services["notification"])
    assert env["DATABASE_URL"]["secretKeyRef"]["name"] == "shop-database-urls"
    assert env["SMTP_HOST"] == "smtp.example.com" and env["SMTP_TLS"] == "starttls"
    assert env["SMTP_PASSWORD"] == {"secretKeyRef": {"name": "shop-smtp", "key": "password"}}
    assert container(services["order"])["image"] == "registry.example.com/shop/shop-order:0.1.0"


def test_kafka_values_make_the_broker_config(helm4: str) -> None:
    docs = render(helm4, "kafka")
    (broker,) = of_kind(docs, "Broker")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    config = by_name(of_kind(docs, "ConfigMap"))[broker["spec"]["config"]["name"]]
    assert config["data"]["bootstrap.servers"] == "my-cluster-kafka-bootstrap.kafka:9092"
    assert config["data"]["default.topic.partitions"] == "10"


ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"


def delivery_orders(docs: list[Document]) -> dict[str, str | None]:
    return {
        trigger["metadata"]["name"]: (trigger["metadata"].get("annotations") or {}).get(
            ORDER_ANNOTATION
        )
        for trigger in of_kind(docs, "Trigger")
    }


@pytest.mark.parametrize("value_set", ["kafka", "production"])
def test_on_a_kafka_broker_only_the_order_services_triggers_are_ordered(
    helm4: str, value_set: str
) -> None:
    orders = delivery_orders(render(helm4, value_set))
    ordered = {name for name, value in orders.items() if value == "ordered"}
    assert ordered == {
        "order-inventory-reserved",
        "order-inventory-rejected",
        "order-payment-authorized",
        "order-payment-declined",
    }
    assert {orders[name] for name in orders.keys() - ordered} == {None}


@pytest.mark.parametrize(
    ("value_set", "assignments"),
    [
        ("default", []),
        ("default", ["services.order.deliveryOrder=ordered"]),
        ("rabbitmq", ["services.order.deliveryOrder=ordered"]),
    ],
)
def test_other_broker_classes_get_no_delivery_order_annotation(
    helm4: str, value_set: str, assignments: list[str]
) -> None:
    assert set(delivery_orders(render(helm4, value_set, assignments)).values()) == {None}


def test_a_services_delivery_order_is_a_value_of_its_own(helm4: str) -> None:
    docs = render(
        helm4,
        "kafka",
        ["services.payment.deliveryOrder=ordered", "services.order.deliveryOrder=unordered"],
    )
    orders = delivery_orders(docs)
    assert {name for name, value in orders.items() if value == "ordered"} == {
        "payment-order-created",
        "payment-order-cancelled",
    }


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["postgresql.enabled=false"], "the services need a database"),
        (["mailpit.enabled=false"], "needs an SMTP server"),
        (["broker.delivery.deadLetterService=nobody"], '"nobody" is not one of the services'),
        (["broker.class=RabbitMQBroker"], "RabbitMQBroker needs broker.config"),
        (["services.order.subscribes[0]=order.created"], "which it produces itself"),
        (["services.viewer.subscribes[0]=order.created"], "allEvents and subscribes"),
    ],
)
def test_inconsistent_values_fail_with_a_clear_message(
    helm4: str, assignments: list[str], message: str
) -> None:
    result = helm_template(helm4, set_values=assignments)
    assert result.returncode != 0
    assert message in result.stderr


def test_an_image_digest_is_appended_to_the_reference(helm4: str) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render(helm4, set_values=[f"services.order.image.digest={digest}", "image.tag=dev"])
    image = container(knative_services(docs)["order"])["image"]
    assert image == f"kind.local/shop-order:dev@{digest}"


def test_the_helm_test_places_an_order_with_the_saga_script(helm4: str) -> None:
    docs = render(helm4)
    (job,) = of_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = by_name(of_kind(docs, "ConfigMap"))["shop-test-saga"]["data"]["saga_check.py"]
    assert "def run_saga" in script
    main = job["spec"]["template"]["spec"]["containers"][0]
    assert main["command"] == ["python", "/etc/shop-test/saga_check.py"]
    assert group_of(job) == "batch"
