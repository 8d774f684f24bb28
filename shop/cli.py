"""The `shop` command: one sub-command per module in `shop/commands/`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import shop.commands
from shop.inspect import NotRunning

# A command needs `shop up` and none runs: the code each command used for it before (tests pin it).
EXIT_NOT_RUNNING = 2
# The `tool` extra of pyproject.toml: what only the dev tool needs (a service image has none).
TOOL_MODULES = frozenset({"aio_pika", "aiohttp", "aiosmtpd", "kubernetes", "uvloop"})


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
    """Run one sub-command; its exit code.

    Every command that talks to `shop up` finds it through shop.inspect.endpoints, which raises
    NotRunning when none runs: it is reported here, for all of them, in one line.
    """
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except NotRunning as error:
        print(f"shop {args.command}: {error}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TOOL_MODULES:
            raise
        print(
            f"shop {args.command}: {error.name} is not installed: the dev tool needs its extra, "
            "`pip install 'knative-shop[tool]'` (`make up` installs it)",
            file=sys.stderr,
        )
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
