"""The one error type with an HTTP status: every refusal answers with its JSON body."""

from __future__ import annotations

from typing import Any

from wire.strings import QUOTE_CHARACTERS


class Problem(Exception):
    """A refusal: `status`, and a short JSON body naming what is wrong and, where one applies,
    the field or CloudEvents attribute at fault and the limit it broke."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        attribute: str | None = None,
        limit: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.attribute = attribute
        self.limit = limit

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.attribute is not None:
            # An attribute name may come from the client: quoted cut short, as its values are.
            body["attribute"] = self.attribute[:QUOTE_CHARACTERS]
        if self.limit is not None:
            body["limit"] = self.limit
        return body
