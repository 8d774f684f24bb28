"""The README's walkthrough, run as written by bash against a real `shop up` of manifests/.

Every fenced bash block preceded by `<!-- walkthrough: NAME ... -->` is run, in the README's
order, in one bash process with `set -euo pipefail`, as a reader pasting them into one terminal
would. `shop up` is started as `make up` starts it (`shop up` from the repository, on
manifests/), with two differences the commands do not see: a free broker port, and the state
dir of a temporary folder the blocks run in, which holds `.shop/` (the blocks read every URL from
`.shop/run/endpoints.json`) and a `.venv` link to the repository's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.processes import wait_for
from tests.support.shop_client import ShopClient
from tests.support.shop_up import REPO_ROOT, ShopUp

README = REPO_ROOT / "README.md"
BLOCK = re.compile(
    r"^<!-- walkthrough: (?P<name>[\w-]+)[^\n]*-->\n```bash\n(?P<code>.*?)^```$", re.M | re.S
)
STEPS = [
    "setup",
    "customer",
    "stock",
    "order",
    "retry",
    "confirmed",
    "mail",
    "story",
    "raw-event",
    "watch",
    "dead-letter",
    "refused",
    "where",
]
SEPARATOR = "=== walkthrough step {name} ==="
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def walkthrough(readme: str) -> dict[str, str]:
    """The walkthrough's blocks by name, in the README's order."""
    blocks: dict[str, str] = {}
    for match in BLOCK.finditer(readme):
        assert match["name"] not in blocks, f"two walkthrough blocks named {match['name']}"
        blocks[match["name"]] = match["code"]
    return blocks


@dataclass(frozen=True, repr=False)
class Walk:
    """What running the walkthrough printed: each step's stdout, and everything for failures."""

    code: int
    steps: dict[str, str]
    stdout: str
    stderr: str

    def __repr__(self) -> str:  # what an assertion about it shows: all of it
        return (
            f"exit code {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def step(self, name: str) -> str:
        assert name in self.steps, f"step {name!r} never ran\n{self}"
        return self.steps[name]


def run_walkthrough(blocks: dict[str, str], cwd: Path) -> Walk:
    script = ["set -euo pipefail"]
    for name, code in blocks.items():
        script += [f"echo '{SEPARATOR.format(name=name)}'", code]
    done = subprocess.run(  # noqa: PLW1510 (the exit code is part of the result)
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    pieces = re.split(r"^=== walkthrough step ([\w-]+) ===$\n?", done.stdout, flags=re.M)
    steps = dict(zip(pieces[1::2], pieces[2::2], strict=True))
    return Walk(done.returncode, steps, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the reader's shell is: `.shop/` of the running shop and the project's `.venv`."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / ".venv").symlink_to(REPO_ROOT / ".venv")
    return folder


@pytest.fixture(scope="module")
def shop(folder: Path) -> Iterator[ShopUp]:
    with ShopUp(REPO_ROOT / "manifests", folder / ".shop") as running:
        yield running


@pytest.fixture(scope="module")
def walk(shop: ShopUp, folder: Path) -> Walk:
    return run_walkthrough(walkthrough(README.read_text()), folder)


def test_the_readme_marks_every_step_of_the_walkthrough_in_order() -> None:
    assert list(walkthrough(README.read_text())) == STEPS


def test_every_command_of_the_walkthrough_succeeds(walk: Walk) -> None:
    assert walk.code == 0, walk
    assert list(walk.steps) == STEPS, walk
    assert "no '" not in walk.stderr, walk  # poll gave up


def test_the_setup_reads_every_url_from_endpoints_json(walk: Walk, shop: ShopUp) -> None:
    assert f"broker: {shop.broker_url}  viewer: {shop.url('viewer')}" in walk.step("setup"), walk


def test_a_customer_registers_stock_is_set_and_an_order_is_placed_pending(
    walk: Walk, shop: ShopUp
) -> None:
    user = json.loads(_json_line(walk.step("customer"), '"email": "ada.'))
    assert user == {**user, "id": _user_id(walk), "name": "Ada Lovelace", "email": _email(walk)}
    assert requests.get(f"{shop.url('customer')}/users/{user['id']}", timeout=5).status_code == 200
    stock = walk.step("stock")
    assert stock.startswith("HTTP/1.1 201 CREATED\n"), walk
    assert '"sku": "tea", "available": 10, "reserved": 0, "sold": 0, "stocked": 10' in stock
    order = _json_line(walk.step("order"), '"status": "pending"')
    assert f'"customer_id": "{_user_id(walk)}"' in order and '"total": 900' in order, walk


def test_the_retried_order_gets_the_first_answer_replayed(walk: Walk) -> None:
    lines = [line.rstrip("\r") for line in walk.step("retry").splitlines()]
    assert lines == [
        "HTTP/1.1 201 CREATED",
        f"Location: /orders/{_order_id(walk)}",
        "Idempotent-Replayed: true",
    ], walk
    # ... and placed nothing: two packets are sold below, not four.


def test_the_order_is_confirmed_and_the_tea_sold(walk: Walk, shop: ShopUp) -> None:
    confirmed = walk.step("confirmed")
    order_id = _order_id(walk)
    assert f'"id": "{order_id}",\n    "status": "confirmed",' in confirmed, walk
    assert '"sku": "tea", "available": 8, "reserved": 0, "sold": 2, "stocked": 10' in confirmed
    assert ShopClient(shop.endpoints).order(order_id)["status"] == "confirmed"


def test_the_confirmation_mail_is_listed_and_in_the_maildir(walk: Walk, shop: ShopUp) -> None:
    mail, order_id, email = walk.step("mail"), _order_id(walk), _email(walk)
    assert f'"mail_subject": "Order {order_id} is confirmed",' in mail, walk
    assert f'"to": "{email}",' in mail and '"status": "sent",' in mail
    # The Maildir listing, one line per kept mail: the welcome and the confirmation.
    assert f"{email} | Welcome, Ada Lovelace\n" in mail, walk
    assert f"{email} | Order {order_id} is confirmed\n" in mail, walk
    assert any(m["To"] == email and order_id in m["Subject"] for m in shop.mails())


def test_shop_tail_shows_the_orders_whole_story(walk: Walk) -> None:
    lines = walk.step("story").splitlines()
    order_id = _order_id(walk)
    assert all(f"subject={order_id}" in line for line in lines) and len(lines) == 5, walk
    types = [line.split()[1] for line in lines]
    assert types[0] == "order.created" and types[3:] == ["order.confirmed", "notification.sent"]
    assert sorted(types[1:3]) == ["inventory.reserved", "payment.authorized"], walk


def test_a_raw_cloudevent_posted_with_curl_is_accepted_and_answered_by_a_mail(
    walk: Walk, shop: ShopUp
) -> None:
    assert walk.step("raw-event").startswith("HTTP/1.1 202 Accepted\n"), walk
    watched = walk.step("watch").splitlines()
    grace = re.search(r"subject=(grace-\d+)", watched[0])
    assert grace is not None, walk
    assert watched[0].split()[1:3] == ["user.created", "/readme/curl"], walk
    assert watched[0].endswith(f"id=hello-{grace[1]}")
    assert watched[1].split()[1:4] == [
        "notification.sent",
        "/shop/notification",
        f"subject={grace[1]}",
    ]
    assert '"mail_subject": "Welcome, Grace Hopper",' in walk.step("watch")
    # The broker journaled it as it came, in binary mode.
    client = ShopClient(shop.endpoints)
    [accepted] = [e for e in client.journal() if e["id"] == f"hello-{grace[1]}"]
    assert accepted["source"] == "/readme/curl" and accepted["type"] == "user.created"
    journaled = client.journal_event(accepted["seq"])
    assert journaled.data == {
        "user_id": grace[1],
        "name": "Grace Hopper",
        "email": "grace@example.com",
    }
    assert journaled.deliveries()["shop/notification-user-created"]["state"] == "delivered"
    wait_for(
        lambda: any(m["To"] == "grace@example.com" for m in shop.mails()),
        what="Grace's welcome mail in the Maildir",
    )


def test_an_event_no_service_can_take_is_dead_lettered_once_per_trigger(walk: Walk) -> None:
    output = walk.step("dead-letter")
    assert output.startswith("HTTP/1.1 202 Accepted\n"), walk
    rows = [line for line in output.splitlines() if " order.created " in line]
    assert len(rows) == 2 and "(2 dead letters)" in output, walk
    failed_at = sorted(row.split()[5] for row in rows)
    assert failed_at == ["inventory", "payment"], walk
    assert all(row.split()[7] == "400" and row.endswith("pending") for row in rows), walk


def test_the_broker_refuses_a_request_without_specversion(walk: Walk) -> None:
    refused = walk.step("refused")
    assert refused.startswith("HTTP/1.1 400 Bad Request\n"), walk
    answer = json.loads(refused.split("\n\n", 1)[1])
    assert "specversion" in answer["error"], walk


def test_shop_status_and_the_journal_answer(walk: Walk) -> None:
    where = walk.step("where")
    assert "everything is ready" in where, walk
    assert '"seq": 1,' in where and '"attempts": [' in where and '"outcome": "delivered"' in where


def _json_line(output: str, containing: str) -> str:
    found = [line for line in output.splitlines() if containing in line]
    assert len(found) == 1, f"no single line with {containing!r} in:\n{output}"
    return found[0]


def _user_id(walk: Walk) -> str:
    match = re.search(rf'"id": "({UUID})"', walk.step("customer"))
    assert match is not None, walk
    return match[1]


def _email(walk: Walk) -> str:
    match = re.search(r'"email": "(ada\.\d+@example\.com)"', walk.step("customer"))
    assert match is not None, walk
    return match[1]


def _order_id(walk: Walk) -> str:
    match = re.search(rf'"id": "({UUID})", "status": "pending"', walk.step("order"))
    assert match is not None, walk
    return match[1]
