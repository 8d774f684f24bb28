"""The `shop` command: one sub-command per module in `shop/commands/`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import shop.commands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command that `shop/commands/` defines.

    A command module defines `register(subparsers)`, which adds its parser and sets
    `func=<callable(args) -> int>` as its default.
    """
    parser = argparse.ArgumentParser(
        prog="shop", description="Run, inspect and exercise the event-driven shop."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(shop.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"shop.commands.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
