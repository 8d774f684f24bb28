"""`shop up`'s terminal: each process's lines behind its aligned name, and its own status lines.

Status lines read `shop up: <message>` so that a person spots them and a test can wait for one
(`shop up: ready`). Colour only on a terminal, and never with NO_COLOR set (no-color.org).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TextIO

STATUS_PREFIX = "shop up: "
_RESET = "\033[0m"
_BOLD = "\033[1m"
_RED = "\033[31m"
# Cyan, yellow, green, magenta, blue and their bright variants: readable on dark and light.
_PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


class Console:
    """Writes whole lines to one stream, flushed, so that interleaved processes stay readable."""

    def __init__(self, stream: TextIO, *, colour: bool) -> None:
        self._stream = stream
        self._colour = colour
        self._width = 0
        self._colours: dict[str, str] = {}
        self._broken = False

    @classmethod
    def for_stream(cls, stream: TextIO, environ: Mapping[str, str]) -> Console:
        """A console that colours only when `stream` is a terminal and NO_COLOR is unset."""
        isatty = getattr(stream, "isatty", None)
        terminal = bool(isatty is not None and isatty())
        return cls(stream, colour=terminal and not environ.get("NO_COLOR"))

    def align(self, names: Iterable[str]) -> None:
        """Give every process name a colour and pad prefixes to the longest name."""
        for name in names:
            self._width = max(self._width, len(name))
            if name not in self._colours:
                self._colours[name] = _PALETTE[len(self._colours) % len(_PALETTE)]

    def prefix(self, name: str) -> str:
        """`order     | `, coloured on a terminal."""
        label = name.ljust(max(self._width, len(name)))
        if self._colour:
            label = f"\033[{self._colours.get(name, _PALETTE[0])}m{label}{_RESET}"
        return f"{label} | "

    def line(self, name: str, text: str) -> None:
        """One line a process wrote."""
        self._write(self.prefix(name) + text)

    def status(self, message: str) -> None:
        """One of `shop up`'s own lines."""
        self._write(self._styled(STATUS_PREFIX + message, _BOLD))

    def error(self, message: str) -> None:
        """A problem that stops `shop up` (or a process): `shop up: error: ...`."""
        self._write(self._styled(f"{STATUS_PREFIX}error: {message}", _BOLD + _RED))

    def plain(self, text: str) -> None:
        """A line as is (the table)."""
        self._write(text)

    def _styled(self, text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if self._colour else text

    def _write(self, text: str) -> None:
        if self._broken:
            return
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except OSError:
            # Whoever read our output is gone (a closed pipe, a closed terminal: EPIPE, EIO);
            # the processes keep running until stopped, and their log files keep their lines.
            self._broken = True
