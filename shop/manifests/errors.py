"""The error that stops `shop up` on a manifest Knative's admission webhook would refuse."""

from __future__ import annotations


class ManifestError(ValueError):
    """A manifest problem, named by file, line, object and field.

    Reads like `manifests/30-triggers.yaml:12: Trigger shop/payment-order-created: spec.broker:
    required`; the line and the field are left out when unknown.
    """

    def __init__(
        self,
        file: str,
        line: int | None,
        obj: str | None,
        path: str | None,
        message: str,
    ) -> None:
        where = file if line is None else f"{file}:{line}"
        parts = [where] + [part for part in (obj, path) if part] + [message]
        super().__init__(": ".join(parts))
        self.file = file
        self.line = line
        self.obj = obj
        self.path = path
        self.message = message
