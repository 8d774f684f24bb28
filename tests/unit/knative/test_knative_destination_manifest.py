"""A Destination as a manifest states it: admitted with knative.dev/pkg's Destination rules."""

from __future__ import annotations

from typing import Any

import pytest

from wire.knative import Destination, FieldError, KReference

REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "order"}


@pytest.mark.parametrize(
    ("manifest", "destination"),
    [
        ({"uri": "http://hooks.example/in"}, Destination(uri="http://hooks.example/in")),
        ({"ref": REF}, Destination(ref=KReference("serving.knative.dev/v1", "Service", "order"))),
        (
            {"ref": {**REF, "namespace": "other"}, "uri": "/events"},
            Destination(
                ref=KReference("serving.knative.dev/v1", "Service", "order", "other"),
                uri="/events",
            ),
        ),
        ({"ref": REF, "uri": ""}, Destination(ref=KReference(*REF.values()))),
    ],
)
def test_a_destination_is_read_from_its_manifest(
    manifest: dict[str, Any], destination: Destination
) -> None:
    assert Destination.from_manifest(manifest, "spec.subscriber") == destination


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        ("http://x", "spec.subscriber: expected an object, not str"),
        ({}, "spec.subscriber: expected at least one of ref and uri, got neither"),
        ({"uri": 5}, "spec.subscriber.uri: expected a string, not 5"),
        ({"ref": ["order"]}, "spec.subscriber.ref: expected an object, not list"),
        ({"ref": {"kind": "Service", "name": "x"}}, "spec.subscriber.ref.apiVersion: required"),
        (
            {"ref": {**REF, "apiVersion": 1}},
            "spec.subscriber.ref.apiVersion: expected a string, not 1",
        ),
        ({"ref": {**REF, "kind": 1}}, "spec.subscriber.ref.kind: expected a string, not 1"),
        ({"ref": {**REF, "name": 1}}, "spec.subscriber.ref.name: expected a string, not 1"),
        (
            {"ref": {**REF, "namespace": 1}},
            "spec.subscriber.ref.namespace: expected a string, not 1",
        ),
        (
            {"uri": "/events"},
            "spec.subscriber.uri: '/events': a URI without a ref must be absolute",
        ),
        (
            {"uri": "http:events"},
            "spec.subscriber.uri: 'http:events': a URI without a ref must be absolute",
        ),
        (
            {"uri": "//hooks.example/in"},
            "spec.subscriber.uri: '//hooks.example/in': a URI without a ref must be absolute",
        ),
        (
            {"ref": REF, "uri": "http://x/events"},
            "spec.subscriber.uri: 'http://x/events': a URI next to a ref must be relative (a path)",
        ),
    ],
)
def test_a_refused_destination_names_the_field_at_fault(manifest: Any, error: str) -> None:
    with pytest.raises(FieldError) as refused:
        Destination.from_manifest(manifest, "spec.subscriber")
    assert str(refused.value) == error
