"""Sender identity (Knative's authentication-oidc): the tokens deliveries carry, and who the
ingress lets in (EventPolicies, else the default authorization mode).

A real broker process, started with `--oidc-issuer`/`--oidc-key` of a real issuer served on
127.0.0.1; real subscribers receive the tokens and the tests verify them as a sink would.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.integration.broker.conftest import NewSubscriber, StartBroker, StartIdentityBroker
from tests.integration.broker.helpers import verified, wait_for_state
from tests.support.broker_process import BrokerProcess, broker_manifest, trigger_manifest
from tests.support.events import wire_event
from tests.support.oidc import RunningIssuer, new_key
from tests.support.processes import wait_for
from tests.support.scripted_subscriber import Received, always, by_path, reply
from wire.http_binding import WireEvent, to_binary
from wire.oidc.subjects import broker_audience, sink_binding_subject, trigger_subject

BROKER_AUDIENCE = broker_audience("shop", "default")
ORDER_AUDIENCE = "order.shop.svc.cluster.local"
DEAD_LETTER_AUDIENCE = "deadletter.shop.svc.cluster.local"
SAME_NAMESPACE = "system:serviceaccount:shop:producer"
OTHER_NAMESPACE = "system:serviceaccount:elsewhere:producer"


def post(
    broker: BrokerProcess, token: str | None, event: WireEvent | None = None
) -> requests.Response:
    """POST an event (a fresh `test.sent` by default) with `token` as its bearer, if any."""
    headers, body = to_binary(event or wire_event("test.sent"))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(broker.ingress(), headers=headers, data=body, timeout=5)


def features(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-features", "namespace": "knative-eventing"},
        "data": data,
    }


def event_policy(
    name: str, senders: list[dict[str, Any]], to: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    """An EventPolicy of namespace shop; `senders` is its `from` (no `to`: the whole namespace)."""
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "EventPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"from": senders, **({"to": to} if to is not None else {}), **spec},
    }


def ref(api_version: str, kind: str, name: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": api_version, "kind": kind, "name": name}}


BROKER_REF = ref("eventing.knative.dev/v1", "Broker", "default")


def sink_binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "subject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "sink": BROKER_REF,
        },
    }


def test_a_subscriber_with_an_audience_gets_its_triggers_token_and_one_without_gets_none(
    start_identity_broker: StartIdentityBroker,
    subscriber_factory: NewSubscriber,
    oidc_issuer: RunningIssuer,
) -> None:
    sub = subscriber_factory()
    broker = start_identity_broker(
        [
            broker_manifest(),
            trigger_manifest(
                "order-events", {"uri": f"{sub.url}/order", "audience": ORDER_AUDIENCE}
            ),
            trigger_manifest("plain", {"uri": f"{sub.url}/plain"}),
        ]
    )
    producer = oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE)
    for _ in range(2):
        assert post(broker, producer).status_code == 202
    first, second = sub.wait_for(2, path="/order")
    token = verified(oidc_issuer, first, ORDER_AUDIENCE)
    assert token.subject == trigger_subject("shop", "order-events")
    assert token.claims["aud"] == [ORDER_AUDIENCE]
    # Minted once for the trigger and the audience, not per delivery.
    assert first.headers["authorization"] == second.headers["authorization"]
    assert all("authorization" not in r.headers for r in sub.wait_for(2, path="/plain"))


def test_a_dead_letter_sink_gets_the_triggers_token_for_its_own_audience(
    start_identity_broker: StartIdentityBroker,
    subscriber_factory: NewSubscriber,
    oidc_issuer: RunningIssuer,
) -> None:
    failing, dead = subscriber_factory(always(400)), subscriber_factory()
    # The broker's dead-letter sink, with its audience, is the trigger's (it has no delivery).
    dead_letter_sink = {"uri": dead.url, "audience": DEAD_LETTER_AUDIENCE}
    broker = start_identity_broker(
        [
            broker_manifest(delivery={"deadLetterSink": dead_letter_sink}),
            trigger_manifest("pay", {"uri": failing.url, "audience": ORDER_AUDIENCE}),
        ]
    )
    assert post(broker, oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE)).status_code == 202
    (letter,) = dead.wait_for(1)
    (attempt,) = failing.received()
    assert verified(oidc_issuer, attempt, ORDER_AUDIENCE).subject == trigger_subject("shop", "pay")
    token = verified(oidc_issuer, letter, DEAD_LETTER_AUDIENCE)
    assert token.subject == trigger_subject("shop", "pay")
    assert letter.headers["ce-knativeerrorcode"] == "400"


def test_the_ingress_takes_only_a_valid_token_for_the_broker_from_its_namespace(
    start_identity_broker: StartIdentityBroker, oidc_issuer: RunningIssuer
) -> None:
    broker = start_identity_broker([broker_manifest()])
    now = int(time.time())
    unauthenticated = {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "another audience": oidc_issuer.mint(SAME_NAMESPACE, ORDER_AUDIENCE),
        "expired": oidc_issuer.sign(
            oidc_issuer.claims(SAME_NAMESPACE, BROKER_AUDIENCE, exp=now - 120, iat=now - 3720)
        ),
        "another key": oidc_issuer.sign(
            oidc_issuer.claims(SAME_NAMESPACE, BROKER_AUDIENCE), key=new_key()
        ),
    }
    for case, token in unauthenticated.items():
        response = post(broker, token)
        assert response.status_code == 401, case
        assert response.headers["WWW-Authenticate"] == "Bearer", case
        assert response.json()["field"] == "Authorization", case

    assert post(broker, oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE)).status_code == 202
    outsider = oidc_issuer.mint(OTHER_NAMESPACE, BROKER_AUDIENCE)
    refused_event = wire_event("test.sent")
    refused = post(broker, outsider, refused_event)
    assert refused.status_code == 403
    assert OTHER_NAMESPACE in refused.json()["error"]
    assert "no EventPolicy allows" in refused.json()["error"]

    metrics = broker.metrics()
    assert metrics['shop_broker_ingress_requests_total{broker="shop/default",status="401"}'] == 5
    assert metrics['shop_broker_ingress_requests_total{broker="shop/default",status="403"}'] == 1
    warnings = [
        r for r in broker.log_records() if r["level"] == "warning" and "refused" in r["message"]
    ]
    assert len(warnings) == 6
    (forbidden,) = [r for r in warnings if r["status"] == 403]
    assert forbidden["sender"] == OTHER_NAMESPACE
    assert (forbidden["event_id"], forbidden["type"]) == (refused_event.id, "test.sent")
    assert outsider not in broker.logs()


def test_deny_all_refuses_every_sender_when_no_policy_applies(
    start_identity_broker: StartIdentityBroker, oidc_issuer: RunningIssuer
) -> None:
    broker = start_identity_broker(
        [broker_manifest(), features(**{"default-authorization-mode": "deny-all"})]
    )
    response = post(broker, oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE))
    assert response.status_code == 403
    assert "Deny-All" in response.json()["error"]


def test_event_policies_admit_exactly_their_senders_and_events(
    start_identity_broker: StartIdentityBroker, oidc_issuer: RunningIssuer
) -> None:
    order_prefix = [{"prefix": {"type": "order."}}]
    broker = start_identity_broker(
        [
            broker_manifest(),
            sink_binding("order-events"),
            sink_binding("other-events"),
            # Applies by ref: senders of the other namespace, only order.* events.
            event_policy(
                "a-partners",
                [{"sub": "system:serviceaccount:elsewhere:*"}],
                to=[BROKER_REF],
                filters=order_prefix,
            ),
            # Applies to every broker of the namespace: the SinkBinding's subject, any event.
            event_policy(
                "b-binding", [ref("sources.knative.dev/v1", "SinkBinding", "order-events")]
            ),
            # Matches the partners again, without filters: never asked, `a-partners` decides.
            event_policy("c-late", [{"sub": OTHER_NAMESPACE}], to=[BROKER_REF]),
        ]
    )
    binding = sink_binding_subject("shop", "order-events")
    cases = [
        (OTHER_NAMESPACE, "order.created", 202),
        (OTHER_NAMESPACE, "payment.done", 403),
        (binding, "payment.done", 202),
        (sink_binding_subject("shop", "other-events"), "order.created", 403),
        # Policies apply, so the default mode does not: the same namespace is not enough.
        (SAME_NAMESPACE, "order.created", 403),
    ]
    for subject, event_type, status in cases:
        response = post(broker, oidc_issuer.mint(subject, BROKER_AUDIENCE), wire_event(event_type))
        assert response.status_code == status, (subject, event_type, response.text)


def test_a_reply_is_authorized_as_if_its_trigger_had_sent_it(
    start_identity_broker: StartIdentityBroker,
    subscriber_factory: NewSubscriber,
    oidc_issuer: RunningIssuer,
) -> None:
    def answer(n: int, received: Received) -> WireEvent:
        return wire_event("test.answer", source="/answerer")

    sub = subscriber_factory(by_path({"/ask": reply(answer), "/stranger": reply(answer)}))
    dead = subscriber_factory()
    asked = {"attributes": {"type": "test.ask"}}
    no_retries = {"deadLetterSink": {"uri": dead.url}}
    broker = start_identity_broker(
        [
            broker_manifest(),
            trigger_manifest("ask", {"uri": f"{sub.url}/ask"}, filter=asked),
            trigger_manifest(
                "stranger", {"uri": f"{sub.url}/stranger"}, filter=asked, delivery=no_retries
            ),
            trigger_manifest(
                "answer",
                {"uri": f"{sub.url}/answer"},
                filter={"attributes": {"type": "test.answer"}},
            ),
            event_policy("producers", [{"sub": SAME_NAMESPACE}]),
            event_policy("replies", [ref("eventing.knative.dev/v1", "Trigger", "ask")]),
        ]
    )
    question = wire_event("test.ask")
    assert (
        post(broker, oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE), question).status_code == 202
    )
    (letter,) = dead.wait_for(1)
    assert letter.headers["ce-id"] == question.id
    assert letter.headers["ce-knativeerrorcode"] == "403"
    assert letter.headers["ce-knativeerrordest"] == broker.ingress()
    wait_for_state(broker, question.id, "shop/ask", "delivered")
    (answered,) = sub.wait_for(1, path="/answer")
    assert answered.headers["ce-type"] == "test.answer"
    refusals = [r for r in broker.log_records() if "refused an event" in r["message"]]
    assert [(r["status"], r["sender"]) for r in refusals] == [
        (403, trigger_subject("shop", "stranger"))
    ]


def test_an_unreachable_issuer_is_503_with_retry_after_until_it_answers(
    start_identity_broker: StartIdentityBroker, oidc_issuer: RunningIssuer
) -> None:
    oidc_issuer.stop()
    broker = start_identity_broker([broker_manifest()])
    token = oidc_issuer.mint(SAME_NAMESPACE, BROKER_AUDIENCE)
    response = post(broker, token)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert "issuer" in response.json()["error"]

    oidc_issuer.start()
    wait_for(
        lambda: post(broker, token).status_code == 202,
        timeout=15,
        what="a 202 once the issuer is back",
    )


def test_without_identity_options_tokens_and_policies_are_ignored(
    start_broker: StartBroker, subscriber_factory: NewSubscriber
) -> None:
    sub = subscriber_factory()
    broker = start_broker(
        [
            broker_manifest(),
            trigger_manifest("t", {"uri": sub.url, "audience": ORDER_AUDIENCE}),
            features(
                **{"authentication-oidc": "enabled", "default-authorization-mode": "Deny-All"}
            ),
            event_policy("nobody", [{"sub": "system:serviceaccount:none:none"}]),
        ]
    )
    assert post(broker, None).status_code == 202
    (received,) = sub.wait_for(1)
    assert "authorization" not in received.headers
    assert any("sender identity is off" in r["message"] for r in broker.log_records())
