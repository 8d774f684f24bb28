"""`shop asyncapi`: the AsyncAPI document of the event catalog on a manifest folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop asyncapi` to the CLI."""
    parser = subparsers.add_parser(
        "asyncapi",
        help="write the AsyncAPI 3.0 document of the event catalog (make asyncapi)",
        description=(
            "Build the AsyncAPI 3.0 document of the event catalog: the brokers as channels, "
            "each service's send and receive operations from the manifests' SinkBindings and "
            "Triggers, every event type as a message (CloudEvents binary mode over HTTP)."
        ),
    )
    parser.add_argument(
        "--manifests", type=Path, default=Path("manifests"), help="manifest folder (manifests/)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="the file to write (default: standard output)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with --out instead of writing it: exit 1 when it is stale",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from catalog import CatalogError, load_catalog
    from catalog.asyncapi import AsyncApiError, document_text
    from shop.inspect.asyncapi import manifests_asyncapi
    from shop.manifests import ManifestError, load_topology
    from wire.topology import TopologyError

    if not args.manifests.is_dir():
        print(f"shop asyncapi: {args.manifests} is not a folder of manifests", file=sys.stderr)
        return 2
    if args.check and args.out is None:
        print("shop asyncapi: --check needs --out FILE to compare with", file=sys.stderr)
        return 2
    try:
        text = document_text(manifests_asyncapi(load_topology(args.manifests), load_catalog()))
    except (ManifestError, TopologyError, CatalogError, AsyncApiError) as error:
        print(f"shop asyncapi: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"shop asyncapi: {args.out} is stale: run `make asyncapi`", file=sys.stderr)
            return 1
        return 0
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
