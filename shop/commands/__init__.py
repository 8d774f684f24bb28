"""Sub-commands of `shop`; each module defines `register(subparsers)` (see shop/cli.py)."""
