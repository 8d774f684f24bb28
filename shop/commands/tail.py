"""`shop tail`: follow the live events in the terminal, filtered like a Trigger."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shop.inspect import DEFAULT_STATE_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop tail` to the CLI."""
    parser = subparsers.add_parser(
        "tail",
        help="follow the live events (the viewer's stream) in the terminal",
        description=(
            "Print every event the viewer receives, one line each, as it arrives. --filter "
            "takes a CESQL expression or a Trigger filter object, evaluated by the viewer with "
            "the broker's own code."
        ),
    )
    parser.add_argument(
        "--filter",
        metavar="EXPR",
        help="""CESQL, e.g. "type LIKE 'order.%%'", or {"exact": {"type": "order.created"}}""",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help=(
            "start with the events the viewer still holds (stderr says when it holds none, "
            "or when the broker had pruned the start of it)"
        ),
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--json", action="store_true", help="print each event as one JSON line")
    parser.add_argument("--viewer", metavar="URL", help="the viewer (default: shop up's)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="of `shop up`")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from shop.inspect.endpoints import local_shop
    from shop.inspect.tail import StreamRefused, TailOptions, follow

    option = "--viewer URL"
    viewer = args.viewer or local_shop(args.state_dir, option=option).url("viewer", option=option)
    options = TailOptions(
        viewer_url=viewer.rstrip("/"),
        filter=args.filter,
        history=args.history,
        count=args.count,
        json_lines=args.json,
    )
    try:
        return follow(options, sys.stdout, sys.stderr)
    except StreamRefused as error:
        print(f"shop tail: the viewer refused the filter: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
