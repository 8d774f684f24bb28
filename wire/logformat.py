"""The JSON log line every process of the system writes: one object per line, stable keys."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Keys a log call may pass in `extra=` that end up as top-level JSON fields.
FIELDS = (
    "service",
    "event_id",
    "type",
    "source",
    "subject",
    "sender",
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
