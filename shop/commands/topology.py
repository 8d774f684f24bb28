"""`shop topology`: which Trigger routes which events to which service, from the manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop topology` to the CLI."""
    parser = subparsers.add_parser(
        "topology",
        help="print the trigger graph of the manifests (text or Mermaid)",
        description=(
            "Read the Brokers and Triggers of a manifest folder and print which events go to "
            "which service, and where dead letters go."
        ),
    )
    parser.add_argument(
        "--manifests", type=Path, default=Path("manifests"), help="manifest folder (manifests/)"
    )
    parser.add_argument(
        "--format",
        choices=("text", "mermaid"),
        default="text",
        help="text (default), or a Mermaid flowchart for Markdown",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from shop.inspect.topology import render_mermaid, render_text, view_of
    from shop.manifests import ManifestError, load_topology
    from wire.topology import TopologyError

    if not args.manifests.is_dir():
        print(f"shop topology: {args.manifests} is not a folder of manifests", file=sys.stderr)
        return 2
    try:
        topology = load_topology(args.manifests)
        view = view_of(topology)
    except (ManifestError, TopologyError) as error:
        print(f"shop topology: {error}", file=sys.stderr)
        return 2
    if args.format == "mermaid":
        sys.stdout.write(render_mermaid(view))
    else:
        sys.stdout.write(render_text(view, topology))
    return 0
