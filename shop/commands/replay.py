"""`shop replay`: send journaled events again, to every Trigger that matches or to one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shop.inspect import DEFAULT_STATE_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop replay` to the CLI."""
    parser = subparsers.add_parser(
        "replay",
        help="send events from the broker's journal again (same ids), to every Trigger or one",
        description=(
            "Send the journaled events of a range again, through the broker's routing (every "
            "Trigger whose filter matches) or to one Trigger only. They are the same events "
            "(same id and source): a subscriber that de-duplicates on them, as every service of "
            "the shop does, ignores one it already handled. Like resetting a Kafka consumer "
            "group's offset. Lists what would go first; asks before sending more than 10."
        ),
    )
    parser.add_argument("--after", type=int, default=0, metavar="SEQ", help="events after this seq")
    parser.add_argument(
        "--until",
        metavar="SEQ|TIME",
        help="up to this seq, or arrived by this ISO-8601 time (no offset: local time)",
    )
    parser.add_argument(
        "--filter",
        metavar="EXPR",
        help="""only these: CESQL, e.g. "type LIKE 'order.%%'", or a Trigger filter object""",
    )
    parser.add_argument("--trigger", metavar="NAME", help="only to this Trigger (ns/name or name)")
    parser.add_argument("--dry-run", action="store_true", help="list what would go, send nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask before sending many")
    parser.add_argument("--json", action="store_true", help="print the broker's JSON answer")
    parser.add_argument("--broker", metavar="URL", help="the broker (default: shop up's)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="of `shop up`")
    parser.set_defaults(func=_run, parser=parser)


def _run(args: argparse.Namespace) -> int:
    from shop.inspect.confirm import CONFIRM_ABOVE, confirmed
    from shop.inspect.deadletters import ApiError
    from shop.inspect.endpoints import local_shop
    from shop.inspect.replay import ReplayClient, render_plan, until_bound

    body: dict[str, Any] = {"after": args.after}
    if args.until is not None:
        try:
            body["until"] = until_bound(args.until)
        except ValueError:
            args.parser.error(f"--until: not a seq or an ISO-8601 time: {args.until!r}")
    for name in ("filter", "trigger"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    admin = args.broker or local_shop(args.state_dir, option="--broker URL").broker_admin
    client = ReplayClient(admin)
    try:
        _, plan = client.replay({**body, "dry_run": True})
        count = len(plan["events"])
        if args.dry_run or not count:
            _print(plan, args.json, f"{count} events would go" if count else "nothing to replay")
            return 0
        asking = count > CONFIRM_ABOVE and not args.yes
        if asking and not args.json:
            print(render_plan(plan["events"]))
        if not confirmed(count, "events", yes=args.yes, stdin=sys.stdin, out=sys.stdout):
            return 1
        # Exactly what was listed: nothing that arrived since the list was made.
        body.setdefault("until", plan["last_seq"])
        status, answer = client.replay(body)
    except ApiError as error:
        print(f"shop replay: {error.message}", file=sys.stderr)
        return 1
    if status >= 400:
        print(f"shop replay: {answer['error']}", file=sys.stderr)
    _print(answer, args.json, f"{answer['queued']} of {answer['count']} events sent again")
    return 0 if status < 400 else 1


def _print(answer: dict[str, Any], as_json: bool, summary: str) -> None:
    from shop.inspect.replay import render_plan

    if as_json:
        print(json.dumps(answer, indent=2))
        return
    if answer["events"]:
        print(render_plan(answer["events"]))
    print(summary)
