"""gunicorn's own log lines (start, workers, errors) as JSON, like the rest of a service's."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from wire.logformat import JsonFormatter


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with a JSON formatter on its error log.

    Configured through `logger_class` rather than `logconfig_dict`: any logging config turns on
    gunicorn's access log machinery, which builds a dict of log atoms for every request (about
    a seventh of a worker's time here) even when nothing is written.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())
