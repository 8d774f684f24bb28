"""JSON log lines with stable keys, one per outcome."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from wire.logformat import JsonFormatter


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

    A service answers an event in about a hundred microseconds; writing a line per event from
    the request thread costs a system call, and with it the GIL, which under gunicorn's threads
    took a tenth of the throughput. Lines are therefore gathered and written by one thread every
    `flush_seconds` (at once for warnings and worse) and on exit; the level still comes from the
    logger.
    """

    def __init__(self, logger: logging.Logger, fd: int = 2, flush_seconds: float = 0.1) -> None:
        self._logger = logger
        self._fd = fd
        self._flush_seconds = flush_seconds
        self._encoder = json.JSONEncoder(default=str)
        self._second = -1
        self._second_text = ""
        self._lines: list[str] = []
        self._wake = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(target=self._write_batches, name="outcome-log", daemon=True)
        self._writer.start()

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
        text = self._encoder.encode(line) + "\n"
        with self._wake:
            self._lines.append(text)
            if level >= logging.WARNING:
                self._wake.notify()

    def close(self) -> None:
        """Write what is gathered and stop the writer (at exit)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._writer.join(2)
        self._flush()

    def _write_batches(self) -> None:
        while True:
            with self._wake:
                self._wake.wait(self._flush_seconds)
                closed = self._closed
            self._flush()
            if closed:
                return

    def _flush(self) -> None:
        with self._wake:
            lines, self._lines = self._lines, []
        if lines:
            data = "".join(lines).encode()
            while data:
                data = data[os.write(self._fd, data) :]

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
