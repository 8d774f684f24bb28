"""`shop deadletters [list|show ID|redeliver ID|delete ID]`: the dead letters and what to do."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import requests

from shop.inspect import DEFAULT_STATE_DIR
from shop.inspect.confirm import CONFIRM_ABOVE, confirmed
from shop.inspect.deadletters import (
    ApiError,
    DeadLetterClient,
    name_destinations,
    render_broker_held,
    render_detail,
    render_list,
    time_bound,
)
from shop.inspect.endpoints import LocalShop, local_shop
from shop.inspect.reach import why_no_answer

ACTIONS = ("list", "show", "redeliver", "delete")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop deadletters` to the CLI."""
    parser = subparsers.add_parser(
        "deadletters",
        help="list, show, redeliver or delete the events no subscriber took",
        description=(
            "The deadletter service keeps every event the broker gave up on, with the URL that "
            "failed and its answer. `redeliver ID` sends the original event (same id) again: "
            "by default to the subscriber that failed it only (--to subscriber, through the "
            "local broker's /_shop/redeliver; the other Triggers, which took it, do not get it "
            "twice), or with --to broker back through the broker, where every Trigger whose "
            "filter matches gets it again. `redeliver --filter EXPR` sends every pending dead "
            "letter the filter matches. Locally, events of triggers without a dead-letter "
            "sink, which the broker keeps itself, are listed too."
        ),
    )
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="list")
    parser.add_argument("id", nargs="?", type=int, help="a dead letter's id (show, redeliver)")
    parser.add_argument("--type", help="list: only this event type")
    parser.add_argument("--subject", help="list: only this subject (e.g. an order id)")
    parser.add_argument("--destination", help="list: only failures at this URL (or service)")
    parser.add_argument("--since", help="list: received since (RFC 3339, or 30s, 10m, 2h, 1d)")
    parser.add_argument("--until", help="list: received before (RFC 3339, or 10m...)")
    parser.add_argument("--state", choices=("pending", "redelivered"), help="list: only these")
    parser.add_argument("--limit", type=int, default=100, help="list: at most this many (100)")
    parser.add_argument(
        "--to",
        choices=("subscriber", "broker"),
        default="subscriber",
        help=(
            "redeliver: to the subscriber that failed it only (default, the safe one), or "
            "through the broker to every Trigger that matches"
        ),
    )
    parser.add_argument(
        "--filter",
        metavar="EXPR",
        help="redeliver: every pending dead letter this CESQL or filter object matches",
    )
    parser.add_argument("--dry-run", action="store_true", help="redeliver --filter: only list")
    parser.add_argument("--yes", action="store_true", help="redeliver --filter: do not ask")
    parser.add_argument("--json", action="store_true", help="print the service's JSON answer")
    parser.add_argument("--url", metavar="URL", help="the deadletter service (default: shop up's)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="of `shop up`")
    parser.set_defaults(func=_run, parser=parser)


def _run(args: argparse.Namespace) -> int:
    bulk = args.action == "redeliver" and args.filter is not None
    if bulk and args.id is not None:
        args.parser.error("redeliver takes an id or --filter, not both")
    if args.action != "list" and args.id is None and not bulk:
        args.parser.error(f"{args.action} needs the id of a dead letter")
    local: LocalShop | None = None
    if args.url is None:
        local = local_shop(args.state_dir, option="--url URL")
    url = args.url or (local.url("deadletter", option="--url URL") if local else "")
    client = DeadLetterClient(url)
    names = name_destinations(local.endpoints) if local else {}
    try:
        if args.action == "list":
            return _list(client, args, local, names)
        if args.action == "show":
            item = client.show(args.id)
            print(json.dumps(item, indent=2) if args.json else render_detail(item, names))
            return 0
        if bulk:
            return _redeliver_matching(client, args, names)
        if args.action == "redeliver":
            return _redeliver(client, args)
        client.delete(args.id)
        print(f"dead letter {args.id} deleted")
        return 0
    except ApiError as error:
        print(f"shop deadletters: {error.message}", file=sys.stderr)
        return 1


def _list(
    client: DeadLetterClient, args: argparse.Namespace, local: LocalShop | None, names: Any
) -> int:
    query = {"limit": str(args.limit)}
    for name in ("type", "subject", "state"):
        if getattr(args, name):
            query[name] = getattr(args, name)
    if args.destination:
        by_name = {name: url for url, name in names.items()}
        query["destination"] = by_name.get(args.destination, args.destination)
    for name in ("since", "until"):
        if getattr(args, name):
            query[name] = time_bound(getattr(args, name))
    body = client.list(query)
    held = _broker_held(local) if local is not None else []
    if args.json:
        print(json.dumps({**body, "held_by_broker": held}, indent=2))
        return 0
    print(render_list(body, names))
    if held:
        print(f"\nkept by the local broker (their trigger has no dead-letter sink): {len(held)}")
        print(render_broker_held(held))
    return 0


def _redeliver(client: DeadLetterClient, args: argparse.Namespace) -> int:
    try:
        body = client.redeliver(args.id, args.to)
    except ApiError as error:
        print(f"shop deadletters: dead letter {args.id} not redelivered: {error.message}")
        return 1
    attempt = body["redelivery"]
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        event = body["dead_letter"]
        print(
            f"dead letter {args.id} redelivered to the {args.to}: {event['type']} "
            f"id={event['event_id']} -> {attempt['url']} answered {attempt['status']}"
        )
    return 0


def _redeliver_matching(client: DeadLetterClient, args: argparse.Namespace, names: Any) -> int:
    """`redeliver --filter`: list what matches, ask above a few, then send them."""
    plan = client.redeliver_matching(args.filter, args.to, dry_run=True)
    count = plan["count"]
    if args.dry_run or not count:
        if args.json:
            print(json.dumps(plan, indent=2))
        else:
            print(render_list({"dead_letters": plan["dead_letters"], "total": count}, names))
        return 0
    if count > CONFIRM_ABOVE and not args.yes and not args.json:
        print(render_list({"dead_letters": plan["dead_letters"], "total": count}, names))
    if not confirmed(count, "dead letters", yes=args.yes, stdin=sys.stdin, out=sys.stdout):
        return 1
    body = client.redeliver_matching(args.filter, args.to, dry_run=False)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(f"{body['count']} dead letters redelivered to the {args.to}")
    return 0


def _broker_held(local: LocalShop) -> list[dict[str, Any]]:
    """The local broker's own dead-letter table (empty when it cannot be read)."""
    items: list[dict[str, Any]] = []
    after = 0
    try:
        while True:
            response = requests.get(
                f"{local.broker_admin}/_shop/deadletters",
                params={"after": str(after), "limit": "1000"},
                timeout=5,
            )
            response.raise_for_status()
            page = response.json()
            items.extend(page["dead_letters"])
            if not page["dead_letters"]:
                return items
            after = page["next_after"]
    except (requests.RequestException, ValueError, KeyError) as error:
        why = why_no_answer(error) if isinstance(error, requests.RequestException) else error
        print(f"shop deadletters: cannot read the local broker's table: {why}", file=sys.stderr)
        return items
