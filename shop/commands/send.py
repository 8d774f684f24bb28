"""`shop send`: post one CloudEvent (to the local broker unless told) and print the answer."""

from __future__ import annotations

import argparse
import os
import sys
from http import HTTPStatus
from pathlib import Path

from shop.inspect import DEFAULT_STATE_DIR
from wire.oidc.sender_token import DEFAULT_TOKEN_FILE, bearer_headers

DEFAULT_SOURCE = "/shop/cli"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop send` to the CLI."""
    parser = subparsers.add_parser(
        "send",
        help="post a CloudEvent to the broker and print its answer",
        description=(
            "Post one CloudEvent (binary mode unless --structured) to the local broker of "
            "`shop up`, or to --to URL. Exits 1 when the answer is not 2xx."
        ),
    )
    parser.add_argument("--type", required=True, help="the event type, e.g. order.created")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"(default {DEFAULT_SOURCE})")
    parser.add_argument("--id", help="the event id (default: a new UUID)")
    parser.add_argument("--subject", help="the subject, e.g. an order id")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", help="the data: JSON text, or @FILE to read it from a file")
    data.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="A.B=VALUE",
        help="build JSON data one field at a time (VALUE is JSON when it parses, else text)",
    )
    parser.add_argument(
        "--content-type", default=None, help="datacontenttype of the data (application/json)"
    )
    parser.add_argument(
        "--extension", action="append", default=[], metavar="NAME=VALUE", help="an extension"
    )
    parser.add_argument("--structured", action="store_true", help="structured mode (JSON body)")
    parser.add_argument("--to", metavar="URL", help="where to post (default: the local broker)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="of `shop up`")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=Path(os.environ.get("OIDC_TOKEN_FILE") or DEFAULT_TOKEN_FILE),
        help=(
            "send the token in this file as `Authorization: Bearer`, when the file exists "
            f"(default $OIDC_TOKEN_FILE, else {DEFAULT_TOKEN_FILE})"
        ),
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import requests

    from shop.inspect.compose import OptionError, data_text, extensions
    from shop.inspect.endpoints import local_shop
    from shop.inspect.reach import why_no_answer
    from wire.event_form import FormError, event_from_form, post_event
    from wire.spec import InvalidEvent

    try:
        form = {
            "type": args.type,
            "source": args.source,
            "id": args.id,
            "subject": args.subject,
            "datacontenttype": args.content_type,
            "data": data_text(args.data, args.field),
            "extensions": extensions(args.extension),
        }
        event = event_from_form(form)
        url = args.to or local_shop(args.state_dir, option="--to URL").broker_ingress
    except OptionError as error:
        print(f"shop send: {error}", file=sys.stderr)
        return 2
    except FormError as error:
        print(f"shop send: --{error.field}: {error.message}", file=sys.stderr)
        return 2
    except InvalidEvent as error:
        print(f"shop send: invalid event: {error.message}", file=sys.stderr)
        return 2
    try:
        token = bearer_headers(args.token_file)
    except OSError as error:
        print(f"shop send: --token-file: {error}", file=sys.stderr)
        return 2
    try:
        result = post_event(
            url, event, structured=args.structured, timeout=args.timeout, headers=token
        )
    except requests.RequestException as error:
        print(f"shop send: {url} did not answer: {why_no_answer(error)}", file=sys.stderr)
        return 1
    mode = "structured" if args.structured else "binary"
    print(
        f"{result.status} {_phrase(result.status)}  {event.type}  id={event.id}  ({mode}) -> {url}"
    )
    if result.body.strip():
        print(result.body.strip())
    return 0 if result.accepted else 1


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
