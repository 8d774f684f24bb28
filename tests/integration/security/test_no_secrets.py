"""No secret in any log line or in the journal: a whole saga with sender identity on and the
services logging in to PostgreSQL with a password, then every file searched."""

from __future__ import annotations

import re
from typing import Any

import requests

from tests.integration.saga.conftest import new_sku
from tests.integration.saga.story import wait_for_story
from tests.integration.security.conftest import DATABASE_PASSWORD, NAMESPACE
from tests.support.events import binary_request
from tests.support.shop_client import ShopClient
from tests.support.shop_up import ShopUp

JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")


def _searched(shop: ShopUp, client: ShopClient) -> dict[str, str]:
    """Every log file of the run, `shop up`'s own output, and the broker's whole journal: each
    event in full, with its deliveries and every attempt's answer."""
    texts = {
        str(path): path.read_text(errors="replace")
        for path in sorted((shop.state_dir / "logs").glob("*.log"))
    }
    texts["shop up output"] = shop.output()
    for summary in client.journal():
        texts[f"journal {summary['seq']}"] = repr(
            client.journal_event(int(summary["seq"])).document
        )
    return texts


def test_no_password_or_token_reaches_a_log_or_the_journal(
    shop: ShopUp, client: ShopClient, customer: dict[str, Any]
) -> None:
    mark = client.journal_mark()
    sku = new_sku("secret-tea")
    client.set_stock(sku, 5)
    placed = client.place_order(customer["id"], [(sku, 1, 300)])
    story = wait_for_story(client, placed["id"], after=mark)
    assert story.order["status"] == "confirmed", story
    # A refused sender too: refusals are logged, with their reason, never with the token.
    headers, body = binary_request("order.created", {"x": 1})
    token_file = shop.state_dir / "oidc" / "tokens" / NAMESPACE / "order-broker" / "token"
    token = token_file.read_text().strip()
    refused = requests.post(
        shop.url("payment"),
        headers={**headers, "Authorization": f"Bearer {token}"},
        data=body,
        timeout=10,
    )
    assert refused.status_code == 401  # order's token is for the broker, not for payment

    texts = _searched(shop, client)
    assert len(texts) > 5 and any("payment" in name for name in texts)
    leaks = {
        name: sorted({match[:20] + "..." for match in JWT.findall(text)})
        for name, text in texts.items()
        if JWT.search(text)
    }
    assert not leaks, f"tokens in {leaks}"
    assert not [name for name, text in texts.items() if DATABASE_PASSWORD in text]
    assert not [name for name, text in texts.items() if token in text]
