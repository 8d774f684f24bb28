"""Exceptions a handler or a route raises to say what the kit should answer."""

from __future__ import annotations

from typing import Any


class RetryLater(Exception):
    """Transient trouble: the kit answers 503 (and Retry-After when given); the broker retries."""

    def __init__(self, reason: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


class RequestError(Exception):
    """A client mistake in an HTTP API call: answered with `status` and a JSON body."""

    def __init__(
        self, status: int, error: str, field: str | None = None, limit: Any = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field
        self.limit = limit

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.field is not None:
            body["field"] = self.field
        if self.limit is not None:
            body["limit"] = self.limit
        return body
