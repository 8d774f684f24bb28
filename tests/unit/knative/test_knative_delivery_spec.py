"""A `spec.delivery` is admitted as Knative admits it, and resolved as Knative resolves it."""

from __future__ import annotations

from typing import Any

import pytest

from wire.knative import (
    CLUSTER_DEFAULT_DELIVERY,
    DeliverySpec,
    Destination,
    FieldError,
    KReference,
    effective_delivery,
)

DLS_REF = KReference(api_version="serving.knative.dev/v1", kind="Service", name="deadletter")


def test_a_full_delivery_is_read_with_durations_in_seconds() -> None:
    spec = DeliverySpec.from_manifest(
        {
            "retry": 5,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.5S",
            "timeout": "PT30S",
            "retryAfterMax": "PT1M",
            "format": "json",
            "deadLetterSink": {
                "ref": {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "name": "deadletter",
                },
                "uri": "/failed",
            },
        },
        "spec.delivery",
    )
    assert spec == DeliverySpec(
        retry=5,
        backoff_policy="linear",
        backoff_delay=0.5,
        timeout=30.0,
        retry_after_max=60.0,
        format="json",
        dead_letter_sink=Destination(ref=DLS_REF, uri="/failed"),
    )


def test_an_empty_delivery_sets_nothing() -> None:
    assert DeliverySpec.from_manifest({}, "spec.delivery") == DeliverySpec()


def test_a_dead_letter_sink_may_be_an_absolute_uri() -> None:
    spec = DeliverySpec.from_manifest(
        {"deadLetterSink": {"uri": "http://dls.example/x"}}, "spec.delivery"
    )
    assert spec.dead_letter_sink == Destination(uri="http://dls.example/x")


@pytest.mark.parametrize(
    ("delivery", "path", "reason"),
    [
        ({"retry": -1}, "spec.delivery.retry", "must not be negative"),
        ({"retry": "3"}, "spec.delivery.retry", "expected an integer"),
        ({"retry": True}, "spec.delivery.retry", "expected an integer"),
        ({"retry": 2**31}, "spec.delivery.retry", "32-bit"),
        ({"backoffPolicy": "Linear"}, "spec.delivery.backoffPolicy", "linear, exponential"),
        ({"backoffDelay": "1s"}, "spec.delivery.backoffDelay", "invalid ISO-8601 duration"),
        ({"backoffDelay": 1}, "spec.delivery.backoffDelay", "invalid ISO-8601 duration"),
        ({"timeout": "PT"}, "spec.delivery.timeout", "invalid ISO-8601 duration"),
        ({"timeout": "PT0S"}, "spec.delivery.timeout", "greater than 0"),
        ({"retryAfterMax": "-PT1S"}, "spec.delivery.retryAfterMax", "negative"),
        ({"format": "JSON"}, "spec.delivery.format", "json, binary"),
        ({"backoffdelay": "PT1S"}, "spec.delivery.backoffdelay", "unknown field"),
        ({"deadLetterSink": {}}, "spec.delivery.deadLetterSink", "at least one of ref and uri"),
        ({"deadLetterSink": "dls"}, "spec.delivery.deadLetterSink", "expected an object"),
        (
            {"deadLetterSink": {"uri": "/relative"}},
            "spec.delivery.deadLetterSink.uri",
            "must be absolute",
        ),
        (
            {"deadLetterSink": {"ref": {"kind": "Service", "name": "dls"}}},
            "spec.delivery.deadLetterSink.ref.apiVersion",
            "required",
        ),
        (
            {
                "deadLetterSink": {
                    "ref": {"apiVersion": "v1", "kind": "Service", "name": "dls"},
                    "uri": "http://elsewhere/",
                }
            },
            "spec.delivery.deadLetterSink.uri",
            "must be relative",
        ),
    ],
)
def test_invalid_delivery_fields_are_refused_by_path(
    delivery: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(FieldError, match=reason) as caught:
        DeliverySpec.from_manifest(delivery, "spec.delivery")
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")


def test_a_delivery_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(FieldError, match="expected an object") as caught:
        DeliverySpec.from_manifest(["retry", 3], "spec.delivery")
    assert caught.value.path == "spec.delivery"


BROKER_DLS = Destination(uri="http://broker-dls.example/")
TRIGGER_DLS = Destination(uri="http://trigger-dls.example/")


@pytest.mark.parametrize(
    ("trigger", "broker", "expected"),
    [
        (None, None, CLUSTER_DEFAULT_DELIVERY),
        (None, DeliverySpec(retry=3), DeliverySpec(retry=3)),
        # a trigger's delivery replaces the broker's retry settings wholesale
        (
            DeliverySpec(dead_letter_sink=TRIGGER_DLS),
            DeliverySpec(retry=5, backoff_policy="linear", backoff_delay=1.0),
            DeliverySpec(dead_letter_sink=TRIGGER_DLS),
        ),
        (DeliverySpec(retry=0), None, DeliverySpec(retry=0)),
        (DeliverySpec(timeout=5.0), DeliverySpec(retry=5), DeliverySpec(timeout=5.0)),
        # ... but the dead-letter sink falls back to the broker's
        (
            DeliverySpec(retry=2),
            DeliverySpec(retry=5, dead_letter_sink=BROKER_DLS),
            DeliverySpec(retry=2, dead_letter_sink=BROKER_DLS),
        ),
        (
            DeliverySpec(retry=2, dead_letter_sink=TRIGGER_DLS),
            DeliverySpec(dead_letter_sink=BROKER_DLS),
            DeliverySpec(retry=2, dead_letter_sink=TRIGGER_DLS),
        ),
    ],
)
def test_effective_delivery_follows_knatives_trigger_reconciler(
    trigger: DeliverySpec | None, broker: DeliverySpec | None, expected: DeliverySpec
) -> None:
    assert effective_delivery(trigger, broker) == expected


def test_the_cluster_default_is_ten_exponential_retries_from_200_ms() -> None:
    default = CLUSTER_DEFAULT_DELIVERY
    assert (default.retry, default.backoff_policy, default.backoff_delay) == (
        10,
        "exponential",
        0.2,
    )
    assert default.dead_letter_sink is None


@pytest.mark.parametrize("retry", [0, 1, 2**31 - 1])
def test_retry_takes_every_32_bit_count_from_zero(retry: int) -> None:
    assert DeliverySpec.from_manifest({"retry": retry}, "spec.delivery").retry == retry


@pytest.mark.parametrize(
    ("delivery", "error"),
    [
        (["retry"], "spec.delivery: expected an object, not list"),
        (
            {"retries": 3},
            "spec.delivery.retries: unknown field (known: retry, backoffPolicy, backoffDelay,"
            " timeout, deadLetterSink, retryAfterMax, format)",
        ),
        ({"retry": -1}, "spec.delivery.retry: invalid value -1: must not be negative"),
        (
            {"retry": 2**31},
            "spec.delivery.retry: invalid value 2147483648: must fit a 32-bit integer",
        ),
    ],
)
def test_a_refused_delivery_says_which_field_and_why(delivery: Any, error: str) -> None:
    with pytest.raises(FieldError) as refused:
        DeliverySpec.from_manifest(delivery, "spec.delivery")
    assert str(refused.value) == error
