"""Cluster addresses in a manifest's env become local ones under `shop up`."""

from __future__ import annotations

import pytest

from shop.runner.addresses import LocalAddresses

ADDRESSES = LocalAddresses("http://127.0.0.1:8080", {("shop", "deadletter"): 8087})


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("http://deadletter.shop.svc.cluster.local", "http://127.0.0.1:8087"),
        (
            "http://deadletter.shop.svc.cluster.local/deadletters?x=1",
            "http://127.0.0.1:8087/deadletters?x=1",
        ),
        ("http://deadletter.shop.svc/", "http://127.0.0.1:8087/"),
        (
            "http://broker-ingress.knative-eventing.svc.cluster.local/shop/default",
            "http://127.0.0.1:8080/shop/default",
        ),
    ],
)
def test_cluster_addresses_of_what_shop_up_runs_become_local(value: str, local: str) -> None:
    assert ADDRESSES.localise(value) == local


@pytest.mark.parametrize(
    "value",
    [
        "http://other.shop.svc.cluster.local",  # not a service shop up runs
        "http://deadletter.elsewhere.svc.cluster.local",
        "https://example.com/deadletter.shop.svc.cluster.local",
        "postgresql://db.shop.svc.cluster.local/x",
        "plain text",
    ],
)
def test_other_values_are_left_alone(value: str) -> None:
    assert ADDRESSES.localise(value) == value
