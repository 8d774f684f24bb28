"""`shop up`'s terminal: each process's lines behind its aligned name, and its own status lines.

Status lines read `shop up: <message>` so that a person spots them and a test can wait for one
(`shop up: ready`). Colour only on a terminal, and never with NO_COLOR set (no-color.org).

The processes log JSON lines (wire/logformat.py). On a terminal they are shown the human way
(LogEcho.HUMAN): a warning or an error as one short line, `12:00:01 warning  delivery failed
type=order.created status=503`, and quieter records not at all, so that the table stays in
view. Piped, or with `--log-format json`, every line is shown as the process wrote it. Lines
that are not JSON records (a traceback, a print) are always shown; the log files under
`<state-dir>/logs/` always keep every line.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

STATUS_PREFIX = "shop up: "
_RESET = "\033[0m"
_BOLD = "\033[1m"
_RED = "\033[31m"
_YELLOW = "\033[33m"
# Cyan, yellow, green, magenta, blue and their bright variants: readable on dark and light.
_PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
_QUIET_LEVELS = frozenset({"debug", "info"})
# The fields of a record worth a place on its line, in this order (the prefix names the service).
_SHOWN_FIELDS = (
    "type",
    "subject",
    "trigger",
    "status",
    "attempt",
    "error",
    "event_id",
)


class LogEcho(enum.Enum):
    """How the processes' JSON log records are shown on the terminal."""

    HUMAN = "human"
    JSON = "json"


class Console:
    """Writes whole lines to one stream, flushed, so that interleaved processes stay readable."""

    def __init__(self, stream: TextIO, *, colour: bool, echo: LogEcho = LogEcho.JSON) -> None:
        self._stream = stream
        self._colour = colour
        self.echo = echo
        self._width = 0
        self._colours: dict[str, str] = {}
        self._broken = False

    @classmethod
    def for_stream(
        cls, stream: TextIO, environ: Mapping[str, str], echo: LogEcho | None = None
    ) -> Console:
        """A console that colours only when `stream` is a terminal and NO_COLOR is unset.

        Log records are shown the human way on a terminal, as written elsewhere, unless `echo`
        says which.
        """
        isatty = getattr(stream, "isatty", None)
        terminal = bool(isatty is not None and isatty())
        if echo is None:
            echo = LogEcho.HUMAN if terminal else LogEcho.JSON
        return cls(stream, colour=terminal and not environ.get("NO_COLOR"), echo=echo)

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
        """One line a process wrote, unless it is a quiet record and records are shown short."""
        if self.echo is LogEcho.HUMAN:
            record = log_record(text)
            if record is not None:
                if str(record["level"]).lower() in _QUIET_LEVELS:
                    return
                text = self._human(record)
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

    def _human(self, record: Mapping[str, Any]) -> str:
        def paint(level: str) -> str:
            return self._styled(level, _YELLOW if level == "warning" else _RED)

        return human_line(record, paint)

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


def log_record(text: str) -> dict[str, Any] | None:
    """The JSON log record a line holds (an object with `level` and `message`), else None."""
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not {"level", "message"} <= record.keys():
        return None
    return record


def human_line(record: Mapping[str, Any], paint: Callable[[str], str] = str) -> str:
    """`12:00:01 warning  delivery failed  type=order.created status=503` (local time).

    `paint` styles the level (colour on a terminal).
    """
    level = str(record["level"])
    padding = " " * (len("warning") - len(level))
    parts = [f"{_clock(record.get('time'))} {paint(level)}{padding} {record['message']}"]
    fields = [
        f"{key}={_value(record[key])}" for key in _SHOWN_FIELDS if record.get(key) is not None
    ]
    if fields:
        parts.append(" ".join(fields))
    exception = str(record.get("exception") or "").strip()
    if exception:
        parts.append(exception.splitlines()[-1])
    return "  ".join(parts)


def _clock(stamp: object) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


def _value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text
