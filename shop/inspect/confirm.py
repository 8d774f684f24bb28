"""Asking before a command sends many events again (`shop replay`, `shop deadletters redeliver`)."""

from __future__ import annotations

from typing import TextIO

#: More than this many events to send asks first (or needs --yes).
CONFIRM_ABOVE = 10


def confirmed(count: int, what: str, *, yes: bool, stdin: TextIO, out: TextIO) -> bool:
    """Whether to go on sending `count` events: yes under the threshold or with --yes; else
    the answer to a prompt on a terminal, and no (saying to pass --yes) without one."""
    if yes or count <= CONFIRM_ABOVE:
        return True
    if not stdin.isatty():
        print(f"{count} {what} would be sent: pass --yes to send them", file=out)
        return False
    print(f"send {count} {what} again? [y/N] ", end="", file=out, flush=True)
    return stdin.readline().strip().lower() in ("y", "yes")
