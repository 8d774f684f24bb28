"""The broker's log output: the JSON lines of wire/logformat.py, written to stderr in batches.

The broker logs one line per delivery outcome, thousands per second under load. Writing each
line with its own system call costs more than formatting it (the GIL changes hands at every
write), so lines are gathered and written together: at once for warnings and errors, else
when enough have gathered or every FLUSH_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

from wire.logformat import JsonFormatter

FLUSH_SECONDS = 0.05
CAPACITY = 512


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that writes gathered lines with one write per batch."""

    def __init__(self, stream: TextIO, capacity: int = CAPACITY) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._capacity = capacity

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or len(self._lines) >= self._capacity:
                self._write()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _write(self) -> None:
        if self._lines:
            self.stream.write("".join(self._lines))
            self._lines.clear()
        self.stream.flush()


def configure(level: str) -> BatchingStreamHandler:
    """Send every log record of the process to stderr as JSON lines, in batches."""
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # The JSON lines carry none of these; looking them up costs a few microseconds per record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    return handler


async def flush_forever(handler: logging.Handler) -> None:
    """Flush `handler` every FLUSH_SECONDS until cancelled (then once more)."""
    try:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            handler.flush()
    finally:
        handler.flush()
