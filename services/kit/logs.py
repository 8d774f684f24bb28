"""JSON log lines with stable keys, one per outcome."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

# Keys a log call may pass in `extra=` that end up as top-level JSON fields.
FIELDS = (
    "service",
    "event_id",
    "type",
    "source",
    "subject",
    "trace_id",
    "outcome",
    "status",
    "attempt",
    "duration_ms",
    "trigger",
    "destination",
    "error",
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """Send every log record of the process to stderr as JSON (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)


class OutcomeLog:
    """One JSON line per handled event, in the same shape as JsonFormatter's.

    Handling an event costs a few tens of microseconds; a LogRecord through the logging module
    costs about as much again, so the per-event line is written directly: one `write` of the
    whole line to standard error (the level still comes from the logger).
    """

    def __init__(self, logger: logging.Logger, fd: int = 2) -> None:
        self._logger = logger
        self._fd = fd
        self._encoder = json.JSONEncoder(default=str)
        self._second = -1
        self._second_text = ""

    def write(self, level: int, message: str, fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        line = {
            "time": self._now(),
            "level": _LEVEL_NAMES.get(level) or logging.getLevelName(level).lower(),
            "logger": self._logger.name,
            "message": message,
        }
        for key, value in fields.items():
            if value is not None:
                line[key] = value
        # One write(2) per line: lines from several threads never interleave.
        os.write(self._fd, (self._encoder.encode(line) + "\n").encode())

    def _now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}+00:00"


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}
