"""A Destination's URL as Knative resolves it: ref address plus relative uri, or the uri alone."""

from __future__ import annotations

import pytest

from wire.knative import Destination, KReference

KSVC = KReference("serving.knative.dev/v1", "Service", "order")
ADDRESSES = {("shop", "order"): "http://127.0.0.1:8081", ("other", "order"): "http://10.0.0.9"}


def address_of(ref: KReference, namespace: str) -> str | None:
    return ADDRESSES.get((namespace, ref.name))


@pytest.mark.parametrize(
    ("destination", "url"),
    [
        (Destination(uri="https://hooks.example/in"), "https://hooks.example/in"),
        (Destination(ref=KSVC), "http://127.0.0.1:8081"),
        (Destination(ref=KSVC, uri="/events"), "http://127.0.0.1:8081/events"),
        (Destination(ref=KSVC, uri="events?x=1"), "http://127.0.0.1:8081/events?x=1"),
        (
            Destination(ref=KReference("serving.knative.dev/v1", "Service", "order", "other")),
            "http://10.0.0.9",
        ),
        (Destination(ref=KReference("serving.knative.dev/v1", "Service", "gone")), None),
    ],
)
def test_a_destination_resolves_like_knative(destination: Destination, url: str | None) -> None:
    assert destination.resolve("shop", address_of) == url
