"""values.schema.json: unknown keys, wrong types and malformed durations are refused at render."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.chart.rendering import CHART, chart_values, helm_template
from wire.knative.durations import DurationError, parse_duration

SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
GOOD_DURATIONS = [
    "PT0.2S",
    "PT0,5S",
    "PT1M30S",
    "PT2H",
    "P1D",
    "P1DT12H",
    "P1DT",
    "P1W",
    "P0",
    "PT0S",
]
BAD_DURATIONS = ["0.5s", "500ms", "PT", "P", "P1H", "PT1.5", "1S", "pt1s", "-PT1S", "T1S"]


def _duration_validator() -> jsonschema.Draft7Validator:
    schema = {"definitions": SCHEMA["definitions"], "$ref": "#/definitions/duration"}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize(
    ("assignment", "mentions"),
    [
        ("brokr.class=Kafka", "brokr"),  # a misspelled top-level key
        ("services.order.subscribs[0]=order.created", "subscribs"),  # a misspelled nested key
        ("serviceDefaults.containerConcurrency=many", "containerConcurrency"),  # wrong type
        ("services.order.database=yes", "database"),  # a string for a boolean
        ("broker.class=InMemory", "class"),  # not one of the classes
        ("broker.delivery.backoffDelay=0.5s", "backoffDelay"),  # not ISO-8601
        ("broker.delivery.backoffDelay=PT", "backoffDelay"),  # no amount at all
        ("services.payment.delivery.backoffDelay=P1H", "backoffDelay"),  # hours need the T
        ("services.order.subscribes[0]=Order Created", "subscribes"),  # not an event type
        ("services.order.env.PORT=9090", "PORT"),  # reserved by Knative
        ("smtp.tls=ssl", "tls"),
        ("migrations.mode=job", "mode"),  # neither start nor initContainer
        ("senderIdentity.enabled=yes", "enabled"),
        ("senderIdentity.issuer=http://kubernetes.default.svc", "issuer"),  # not https
        ("viewer.writeActions=maybe", "writeActions"),
        ("viewer.writeActions=true", "writeActions"),  # what a bare YAML `on` becomes
        ("viewer.writeToken.existingSecret=Not_A_Name", "existingSecret"),
        ("tracing.samplingRate=2", "samplingRate"),  # more than every trace
        ("tracing.samplingRate=half", "samplingRate"),
        ("tracing.endpoint=otel-collector:4318", "endpoint"),  # no scheme
        ("tracing.knative.namespaces[0]=Knative_Eventing", "namespaces"),
    ],
)
def test_the_values_schema_refuses_bad_values(helm: str, assignment: str, mentions: str) -> None:
    result = helm_template(helm, set_values=[assignment])
    assert result.returncode != 0, f"{assignment} was accepted"
    assert "schema" in result.stderr.lower()
    assert mentions in result.stderr


def test_the_default_values_meet_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(chart_values()))
    assert not errors, [error.message for error in errors]


def test_helm_accepts_a_good_duration(helm: str) -> None:
    result = helm_template(helm, set_values=["broker.delivery.backoffDelay=PT1M30S"])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("text", GOOD_DURATIONS)
def test_durations_the_schema_accepts_are_ones_knative_reads(text: str) -> None:
    assert _duration_validator().is_valid(text)
    parse_duration(text)  # the project's reading of Knative's parser accepts it too


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_durations_knative_would_refuse_are_refused(text: str) -> None:
    assert not _duration_validator().is_valid(text)
    with pytest.raises(DurationError):
        parse_duration(text)


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    def objects(node: object, path: str) -> list[str]:
        found: list[str] = []
        if isinstance(node, dict):
            is_object = node.get("type") == "object" and "properties" in node
            if is_object and node.get("additionalProperties") is not False:
                found.append(path or "(root)")
            for key, value in node.items():
                found += objects(value, f"{path}/{key}")
        return found

    assert objects(SCHEMA, "") == []
