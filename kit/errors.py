"""Exceptions a handler or a route raises to say what the kit should answer."""

from __future__ import annotations

from typing import Any

from wire.errors import Problem


class RetryLater(Exception):
    """Transient trouble: the kit answers 503 (and Retry-After when given); the broker retries."""

    def __init__(self, reason: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds

    def to_json(self) -> dict[str, Any]:
        """The 503's body: the kit's error body."""
        return {"error": self.reason}

    def headers(self) -> dict[str, str]:
        """The 503's headers: Retry-After when known."""
        if self.retry_after_seconds is None:
            return {}
        return {"Retry-After": str(self.retry_after_seconds)}


class RequestError(Problem):
    """A client mistake in an HTTP API call: answered with `status` and a JSON body."""

    def __init__(
        self, status: int, error: str, field: str | None = None, limit: Any = None
    ) -> None:
        super().__init__(status, error, field=field, limit=limit)
