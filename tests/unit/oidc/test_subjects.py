"""The names Knative gives senders (kmeta.ChildName) and the EventPolicy `sub` patterns."""

from __future__ import annotations

import hashlib
import re

import pytest

from wire.knative.names import child_name
from wire.oidc.subjects import (
    SINK_BINDING_SUFFIX,
    TRIGGER_SUFFIX,
    SubjectPattern,
    any_matches,
    broker_audience,
    parse_patterns,
    same_namespace,
    sink_binding_subject,
    trigger_subject,
)


def knative_child_name(parent: str, suffix: str) -> str:
    """kmeta.ChildName (knative.dev/pkg/kmeta/names.go), transcribed line by line."""
    longest, head = 63, 63 - 32
    if len(parent) <= longest - len(suffix):
        return parent + suffix
    if head - len(suffix) <= 0:
        digest = hashlib.md5((parent + suffix).encode(), usedforsecurity=False).hexdigest()
        name = parent[:head] + digest
        missing = longest - len(name)
        if missing > 0:
            name += suffix[:missing]
        return re.sub(r"[^0-9A-Za-z]+$", "", name)
    digest = hashlib.md5(parent.encode(), usedforsecurity=False).hexdigest()
    return parent[: head - len(suffix)] + digest + suffix


@pytest.mark.parametrize(
    "trigger",
    [
        "order-created",
        "a" * 29,  # exactly fits: 29 + 34 = 63
        "a" * 30,  # hashed: 30 + 32 = 62, padded with the suffix's "-", which is trimmed
        "b" * 28 + "-x",  # hashed, 30 long again, ending in a letter
        "c" * 31,  # hashed: 31 + 32 = 63, no padding
        "inventory-reserved-for-the-order-saga-in-shop",
        "x-" * 40,
        "Order-Created-By-The-Shop-Frontend",
    ],
)
def test_child_name_of_a_trigger_follows_kmeta(trigger: str) -> None:
    expected = knative_child_name(trigger, TRIGGER_SUFFIX)
    assert child_name(trigger, TRIGGER_SUFFIX) == expected
    assert len(expected) <= 63 and expected[-1].isalnum()


def test_a_long_trigger_name_is_hashed_with_its_suffix() -> None:
    trigger = "inventory-reserved-for-the-order-saga-in-shop"
    digest = hashlib.md5((trigger + TRIGGER_SUFFIX).encode(), usedforsecurity=False).hexdigest()
    assert child_name(trigger, TRIGGER_SUFFIX) == trigger[:31] + digest


def test_a_thirty_character_trigger_loses_the_dash_it_was_padded_with() -> None:
    trigger = "t" * 30
    digest = hashlib.md5((trigger + TRIGGER_SUFFIX).encode(), usedforsecurity=False).hexdigest()
    assert child_name(trigger, TRIGGER_SUFFIX) == trigger + digest
    assert len(child_name(trigger, TRIGGER_SUFFIX)) == 62


@pytest.mark.parametrize("parent", ["web", "w" * 59, "w" * 60, "a-much-longer-name-" * 4])
def test_child_name_with_a_short_suffix_keeps_the_suffix(parent: str) -> None:
    assert child_name(parent, "-abc") == knative_child_name(parent, "-abc")
    assert child_name(parent, "-abc").endswith("-abc")


def test_a_triggers_subject_is_its_service_account_lowercased() -> None:
    assert trigger_subject("shop", "order-created") == (
        "system:serviceaccount:shop:order-created-oidc-eventing.knative.dev-trigger"
    )
    long = "Order-Created-By-The-Shop-Frontend"
    assert trigger_subject("shop", long) == (
        "system:serviceaccount:shop:" + knative_child_name(long, TRIGGER_SUFFIX).lower()
    )


def test_a_sink_bindings_subject_and_a_brokers_audience() -> None:
    assert sink_binding_subject("shop", "order") == (
        "system:serviceaccount:shop:order-oidc-sources.knative.dev-sinkbinding"
    )
    long = "order-service-binding-to-the-default-broker"
    assert sink_binding_subject("shop", long).endswith(
        knative_child_name(long, SINK_BINDING_SUFFIX)
    )
    assert broker_audience("shop", "default") == "eventing.knative.dev/broker/shop/default"


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("system:serviceaccount:shop:order", "system:serviceaccount:shop:order", True),
        ("system:serviceaccount:shop:order", "System:ServiceAccount:Shop:Order", True),
        ("system:serviceaccount:shop:order", "system:serviceaccount:shop:order2", False),
        ("system:serviceaccount:shop:order", "system:serviceaccount:shop:orde", False),
        ("system:serviceaccount:shop:*", "system:serviceaccount:shop:order", True),
        ("system:serviceaccount:shop:*", "system:serviceaccount:shop:", True),
        ("system:serviceaccount:shop:*", "system:serviceaccount:shopping:order", False),
        # Knative's SubjectContained: the prefix comparison is case-sensitive.
        ("system:serviceaccount:Shop:*", "system:serviceaccount:shop:order", False),
        ("system:serviceaccount:shop:ord*", "system:serviceaccount:shop:order", True),
        ("*", "anyone at all", True),
        ("system:serviceaccount:shop:*:x", "system:serviceaccount:shop:a:x", False),
    ],
)
def test_subject_patterns_are_exact_or_a_trailing_star_prefix(
    pattern: str, subject: str, matches: bool
) -> None:
    assert SubjectPattern(pattern).matches(subject) is matches


def test_patterns_are_parsed_from_a_comma_separated_list() -> None:
    patterns = parse_patterns(" system:serviceaccount:shop:a , ,system:serviceaccount:ops:*,")
    assert patterns == (
        SubjectPattern("system:serviceaccount:shop:a"),
        SubjectPattern("system:serviceaccount:ops:*"),
    )
    assert any_matches(patterns, "system:serviceaccount:ops:backup")
    assert not any_matches(patterns, "system:serviceaccount:shop:b")
    assert parse_patterns("") == ()
    assert not any_matches((), "system:serviceaccount:shop:a")


def test_same_namespace_is_a_service_account_of_that_namespace() -> None:
    assert same_namespace("system:serviceaccount:shop:order", "shop")
    assert not same_namespace("system:serviceaccount:shopping:order", "shop")
    assert not same_namespace("system:serviceaccounts:shop", "shop")


def test_a_long_name_is_hashed_with_the_kind_as_knative_spells_it() -> None:
    # GetOIDCServiceAccountNameForResource hashes `-oidc-<group>-<Kind>`, then lowercases.
    digest = hashlib.md5(b"x" * 40 + b"-oidc-eventing.knative.dev-Trigger").hexdigest()
    assert digest == "abc817fe84c544893c6cfbe8ab016b25"
    assert trigger_subject("shop", "x" * 40) == f"system:serviceaccount:shop:{'x' * 31}{digest}"
