"""The error a Knative spec raises when one of its fields is invalid, named by field path."""

from __future__ import annotations


class FieldError(ValueError):
    """An invalid field of a Knative spec, like knative.dev/pkg's apis.FieldError.

    `path` is the full dotted path of the field (`spec.delivery.backoffDelay`); the message says
    what is wrong with it. Callers that know the file and object (the manifest loader) add them.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
