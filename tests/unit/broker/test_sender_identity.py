"""The broker's sender identity rules: who a broker admits, and the tokens deliveries carry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from shop.broker.acceptance import Refused
from shop.broker.authentication import Authenticator
from shop.broker.authorization import Authorization, compile_authorization
from shop.broker.config import BrokerConfig
from shop.broker.routes import BrokerRoute, build_routes
from shop.broker.tokens import TokenMinter
from shop.cli import main
from shop.identity.issuer import LocalIssuer
from shop.manifests import load_topology
from tests.support.broker_process import broker_manifest, trigger_manifest
from tests.support.oidc import RunningIssuer, new_key
from wire.knative.filters import compile_trigger_filter
from wire.oidc.keys import IssuerSettings, KeySet
from wire.oidc.subjects import broker_audience

BROKER = "shop/default"
PARTNER = "system:serviceaccount:partner:sender"
SAME_NAMESPACE = "system:serviceaccount:shop:producer"


def authorization(tmp_path: Path, *documents: dict[str, Any]) -> Authorization:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([broker_manifest(), *documents]))
    return compile_authorization(load_topology(tmp_path))


def policy(name: str, subs: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "EventPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"from": [{"sub": sub} for sub in subs], **spec},
    }


def mode(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-features", "namespace": "knative-eventing"},
        "data": {"default-authorization-mode": value},
    }


@pytest.mark.parametrize(
    ("documents", "subject", "allowed"),
    [
        ((), SAME_NAMESPACE, True),  # Knative's default: Allow-Same-Namespace
        ((), PARTNER, False),
        ((), "system:serviceaccount:shopping:x", False),  # a prefix of the namespace is not it
        ((mode("Allow-All"),), PARTNER, True),
        ((mode("Deny-All"),), SAME_NAMESPACE, False),
        # Once a policy applies, only its senders are admitted, whatever the mode.
        ((mode("Allow-All"), policy("p", [PARTNER])), SAME_NAMESPACE, False),
        ((policy("p", [PARTNER.upper()]),), PARTNER, True),  # exact: case-insensitive
        ((policy("p", ["system:serviceaccount:partner:*"]),), PARTNER, True),
        ((policy("p", ["system:serviceaccount:Partner:*"]),), PARTNER, False),  # prefix: exact
        ((policy("p", []),), SAME_NAMESPACE, False),  # a policy without `from` admits nobody
    ],
)
def test_a_broker_admits_by_its_policies_else_by_the_default_mode(
    tmp_path: Path, documents: tuple[dict[str, Any], ...], subject: str, allowed: bool
) -> None:
    refusal = authorization(tmp_path, *documents).refusal(BROKER, subject, {"type": "t"})
    assert (refusal is None) is allowed, refusal
    if refusal is not None:
        assert subject in refusal


def test_the_first_policy_whose_from_matches_decides_even_when_a_later_one_would_allow(
    tmp_path: Path,
) -> None:
    rules = authorization(
        tmp_path,
        policy("b-open", [PARTNER]),
        policy(
            "a-orders",
            ["system:serviceaccount:partner:*"],
            filters=[{"prefix": {"type": "order."}}],
        ),
    )
    assert rules.refusal(BROKER, PARTNER, {"type": "order.created"}) is None
    refusal = rules.refusal(BROKER, PARTNER, {"type": "payment.done"})
    assert refusal is not None and "EventPolicy a-orders" in refusal


def test_a_policys_filters_take_every_dialect_a_trigger_takes(tmp_path: Path) -> None:
    filters = [{"cesql": "source LIKE '/partner/%'"}, {"not": {"exact": {"type": "secret"}}}]
    rules = authorization(tmp_path, policy("p", [PARTNER], filters=filters))
    assert rules.refusal(BROKER, PARTNER, {"type": "order", "source": "/partner/1"}) is None
    assert rules.refusal(BROKER, PARTNER, {"type": "secret", "source": "/partner/1"})
    assert rules.refusal(BROKER, PARTNER, {"type": "order", "source": "/other"})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_minted_once_per_subject_and_audience_and_again_at_half_its_life() -> None:
    key = new_key()
    clock = Clock()
    minter = TokenMinter(LocalIssuer("http://issuer.test", key), lifetime=600, clock=clock)
    first = minter.header("system:serviceaccount:shop:t", "order")
    assert minter.header("system:serviceaccount:shop:t", "order") == first
    assert minter.header("system:serviceaccount:shop:t", "payment") != first
    assert minter.header("system:serviceaccount:shop:u", "order") != first
    clock.now += 299
    assert minter.header("system:serviceaccount:shop:t", "order") == first
    clock.now += 1
    renewed = minter.header("system:serviceaccount:shop:t", "order")
    assert renewed != first

    name, _, value = renewed.decode().rstrip("\r\n").partition(": ")
    assert name == "Authorization"
    claims = jwt.decode(
        value.removeprefix("Bearer "), key.public_key(), algorithms=["RS256"], audience="order"
    )
    assert claims["sub"] == "system:serviceaccount:shop:t"
    assert claims["exp"] - claims["iat"] == 600


def test_routes_carry_the_audiences_of_subscriber_and_dead_letter_sink(tmp_path: Path) -> None:
    sink = {"uri": "http://127.0.0.1:9/dls", "audience": "deadletter.shop.svc.cluster.local"}
    other_sink = {"deadLetterSink": {"uri": "http://127.0.0.1:9/x"}}
    broker_ref = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}
    documents = [
        broker_manifest(delivery={"deadLetterSink": sink}),
        trigger_manifest(
            "a", {"uri": "http://127.0.0.1:9/a", "audience": "a.shop.svc.cluster.local"}
        ),
        trigger_manifest("b", {"uri": "http://127.0.0.1:9/b"}, delivery=other_sink),
        # A Broker publishes its audience; one the Destination names takes precedence.
        trigger_manifest("c", {"ref": broker_ref}, delivery=other_sink),
        trigger_manifest("d", {"ref": broker_ref, "audience": "custom"}, delivery=other_sink),
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents))
    routes = build_routes(load_topology(tmp_path), {}, "http://b", compile_trigger_filter, 1)
    audiences = {
        key: (route.subscriber_audience, route.dead_letter_audience)
        for key, route in routes.triggers.items()
    }
    assert audiences == {
        "shop/a": ("a.shop.svc.cluster.local", "deadletter.shop.svc.cluster.local"),
        "shop/b": (None, None),
        "shop/c": (broker_audience("shop", "default"), None),
        "shop/d": ("custom", None),
    }


@pytest.mark.parametrize("options", [["--oidc-issuer", "http://x"], ["--oidc-key", "k.pem"]])
def test_the_broker_takes_both_identity_options_or_neither(
    options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["broker", *options])
    assert stopped.value.code == 2
    assert "--oidc-issuer and --oidc-key go together" in capsys.readouterr().err
    with pytest.raises(ValueError, match="both the OIDC issuer URL and its key file"):
        BrokerConfig(Path("m"), Path("s"), oidc_issuer="http://x")


class CountingKeySet(KeySet):
    """The issuer's keys, counting how often a verification asked for one."""

    asked = 0

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        self.asked += 1
        return super().key(kid)


def test_a_verified_token_is_remembered_until_it_expires(oidc_issuer: RunningIssuer) -> None:
    keys = CountingKeySet(IssuerSettings(oidc_issuer.url))
    clock = Clock()
    clock.now = float(int(time.time()))  # the verifier checks `exp` against the real time
    broker = BrokerRoute("shop", "default", "http://b/shop/default", ())
    authenticator = Authenticator(keys, [broker], retry_after=2, clock=clock)
    token = oidc_issuer.sign(
        oidc_issuer.claims(
            SAME_NAMESPACE, broker_audience("shop", "default"), exp=int(clock.now) + 60
        )
    )

    def subject() -> str:
        return asyncio.run(authenticator.subject(broker, f"Bearer {token}"))

    assert subject() == SAME_NAMESPACE
    assert subject() == SAME_NAMESPACE
    assert keys.asked == 1
    clock.now += 60  # the token's `exp`: verified again (and, by the real time, still valid)
    assert subject() == SAME_NAMESPACE
    assert keys.asked == 2
    with pytest.raises(Refused) as refused:
        asyncio.run(authenticator.subject(broker, "Bearer " + token[:-4] + "AAAA"))
    assert (refused.value.status, refused.value.field) == (401, "Authorization")
