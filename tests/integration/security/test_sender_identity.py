"""The saga end to end with sender identity on: the chart rendered with `senderIdentity.enabled`,
run by `shop up --oidc`. Every delivery carries a token the services check, every producer sends
its SinkBinding's token, and whoever has no token, or the wrong one, is refused and seen.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from shop.identity.issuer import LocalIssuer
from tests.integration.saga.conftest import new_sku
from tests.integration.saga.story import wait_for_story
from tests.integration.security.conftest import NAMESPACE
from tests.support.events import binary_request
from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp
from wire.oidc.subjects import broker_audience, service_account_subject, trigger_subject

PRICE = 450


def _issuer(shop: ShopUp) -> LocalIssuer:
    """The local issuer's key, as a test with access to the state folder can mint with it."""
    return LocalIssuer.from_key_file(
        shop.endpoints["oidc"], shop.state_dir / "oidc" / "issuer-key.pem"
    )


def _audience(service: str) -> str:
    return f"{service}.{NAMESPACE}.svc.cluster.local"


def test_the_saga_completes_with_every_delivery_verified(
    shop: ShopUp, client: ShopClient, customer: dict[str, Any]
) -> None:
    mark = client.journal_mark()
    sku = new_sku("tea")
    client.set_stock(sku, 10)
    placed = client.place_order(customer["id"], [(sku, 2, PRICE)])
    story = wait_for_story(client, placed["id"], after=mark)
    assert story.order["status"] == "confirmed", story
    assert story.types() == {
        "order.created": 1,
        "inventory.reserved": 1,
        "payment.authorized": 1,
        "order.confirmed": 1,
        "notification.sent": 1,
    }, story
    [sent] = client.notifications(placed["id"])
    assert sent["status"] == "sent"


def test_the_broker_refuses_a_producer_without_a_token_and_one_no_policy_admits(
    shop: ShopUp,
) -> None:
    headers, body = binary_request("order.created", {"forged": True})
    anonymous = requests.post(shop.broker_url, headers=headers, data=body, timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["field"] == "Authorization"

    # Same namespace (Knative's default mode would let it in), but the chart's EventPolicy names
    # only the shop's SinkBindings and Triggers.
    intruder = service_account_subject(NAMESPACE, "intruder")
    token = _issuer(shop).mint(intruder, broker_audience(NAMESPACE, "default"))
    refused = requests.post(
        shop.broker_url,
        headers={**headers, "Authorization": f"Bearer {token}"},
        data=body,
        timeout=10,
    )
    assert refused.status_code == 403, refused.text
    assert intruder in refused.json()["error"]

    warnings = wait_for(
        lambda: [line for line in shop.log("broker").splitlines() if intruder in line] or None,
        what="the broker's log line about the refused intruder",
    )
    assert not any(token in line for line in warnings)


def test_a_service_refuses_events_without_the_token_of_a_trigger_that_delivers_to_it(
    shop: ShopUp,
) -> None:
    payment = shop.url("payment")
    headers, body = binary_request("order.created", {"order_id": "forged", "total": 1})
    anonymous = requests.post(payment, headers=headers, data=body, timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    issuer = _issuer(shop)
    # inventory's Trigger has a token the issuer signed, but for inventory's audience ...
    other_audience = issuer.mint(
        trigger_subject(NAMESPACE, "inventory-order-created"), _audience("inventory")
    )
    refused = requests.post(
        payment,
        headers={**headers, "Authorization": f"Bearer {other_audience}"},
        data=body,
        timeout=10,
    )
    assert refused.status_code == 401, refused.text
    # ... and with payment's audience it is still not a Trigger that delivers to payment.
    wrong_sender = issuer.mint(
        trigger_subject(NAMESPACE, "inventory-order-created"), _audience("payment")
    )
    forbidden = requests.post(
        payment,
        headers={**headers, "Authorization": f"Bearer {wrong_sender}"},
        data=body,
        timeout=10,
    )
    assert forbidden.status_code == 403, forbidden.text

    refusals = wait_for(
        lambda: (
            [line for line in shop.log("payment").splitlines() if "sender_refused" in line] or None
        ),
        what="payment's log lines about refused senders",
    )
    assert len(refusals) >= 3
    assert not any(re.search(r"eyJ[\w-]+\.eyJ", line) for line in refusals)


def test_services_are_told_where_the_local_issuer_is(shop: ShopUp) -> None:
    health = requests.get(f"{shop.endpoints['oidc']}/.well-known/openid-configuration", timeout=5)
    assert health.status_code == 200
    assert health.json()["issuer"] == shop.endpoints["oidc"]
    token_file = shop.state_dir / "oidc" / "tokens" / NAMESPACE / "order-broker" / "token"
    assert token_file.stat().st_mode & 0o077 == 0
