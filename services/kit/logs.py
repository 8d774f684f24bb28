"""JSON log lines with stable keys, one per outcome."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

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
    costs about as much again, so the per-event line is written directly (the level still comes
    from the logger).
    """

    def __init__(self, logger: logging.Logger, stream: TextIO | None = None) -> None:
        self._logger = logger
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, level: int, message: str, fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        line = {
            "time": _now_iso(),
            "level": logging.getLevelName(level).lower(),
            "logger": self._logger.name,
            "message": message,
        }
        line.update((key, value) for key, value in fields.items() if value is not None)
        text = json.dumps(line, default=str) + "\n"
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(text)


def _now_iso() -> str:
    now = time.time()
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{seconds}.{int(now % 1 * 1000):03d}+00:00"
