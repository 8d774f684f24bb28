"""Typed access to a manifest object's fields; every failure names the object and field path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from shop.manifests.errors import ManifestError
from wire.knative import FieldError

T = TypeVar("T")

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def field_path(parent: str, key: str) -> str:
    """The path of `key` under `parent`: `spec.broker`, `metadata.labels[app.kubernetes.io/x]`."""
    if not _PLAIN_KEY.fullmatch(key):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def index_path(parent: str, index: int) -> str:
    """The path of item `index` of the list at `parent`: `spec.filters[0]`."""
    return f"{parent}[{index}]"


@dataclass(frozen=True)
class Origin:
    """Where an object was read: its file, the line its document starts on, its fields' lines."""

    file: str
    line: int
    lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, path: str | None) -> int:
        """The line of the field at `path`, or of its nearest parent that has one."""
        candidate = path or ""
        while candidate:
            if candidate in self.lines:
                return self.lines[candidate]
            cut = max(candidate.rfind("."), candidate.rfind("["))
            if cut <= 0:
                break
            candidate = candidate[:cut]
        return self.line


@dataclass(frozen=True)
class ObjectContext:
    """The object being read (kind, namespace, name) and where it came from, for error messages."""

    origin: Origin
    kind: str
    namespace: str
    name: str | None

    @property
    def label(self) -> str:
        """`Trigger shop/payment-order-created`, as errors name the object."""
        return f"{self.kind} {self.namespace}/{self.name or '<unnamed>'}"

    def error(self, path: str | None, message: str) -> ManifestError:
        """A ManifestError about the field at `path` of this object."""
        return ManifestError(self.origin.file, self.origin.line_of(path), self.label, path, message)


def describe(value: object) -> str:
    """A YAML reader's name for a value, for "expected ..., not ..." messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} (quote it to make it a string)"
    if isinstance(value, int | float):
        return f"the number {value} (quote it to make it a string)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class Fields:
    """A mapping inside an object, read key by key with type checks; absent reads as empty."""

    def __init__(self, context: ObjectContext, value: object, path: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise context.error(path, f"expected an object, not {describe(value)}")
        for key in value:
            if not isinstance(key, str):
                raise context.error(path, f"the key {key!r} must be a string (quote it)")
        self.context = context
        self.path = path
        self.values: Mapping[str, object] = value

    def path_of(self, key: str) -> str:
        """The full path of `key` in this mapping."""
        return field_path(self.path, key)

    def error(self, key: str | None, message: str) -> ManifestError:
        """A ManifestError about `key` of this mapping (or the mapping itself)."""
        return self.context.error(self.path if key is None else self.path_of(key), message)

    def via_knative(self, read: Callable[[], T]) -> T:
        """Run a wire.knative reader, turning its FieldError into this object's ManifestError."""
        try:
            return read()
        except FieldError as error:
            raise self.context.error(error.path, error.message) from None

    def raw(self, key: str) -> object:
        """The value at `key` as YAML gave it (None when absent)."""
        return self.values.get(key)

    def has(self, key: str) -> bool:
        """Whether `key` is present with a non-null value."""
        return self.values.get(key) is not None

    def mapping(self, key: str) -> Fields:
        """The mapping at `key` (empty when absent)."""
        return Fields(self.context, self.values.get(key), self.path_of(key))

    def text(self, key: str) -> str | None:
        """The string at `key`, None when absent."""
        value = self.values.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.error(key, f"expected a string, not {describe(value)}")

    def required_text(self, key: str) -> str:
        """The non-empty string at `key`."""
        value = self.text(key)
        if not value:
            raise self.error(key, "required")
        return value

    def integer(self, key: str) -> int | None:
        """The integer at `key`, None when absent."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, not {describe(value)}")
        return value

    def flag(self, key: str) -> bool | None:
        """The boolean at `key`, None when absent."""
        value = self.values.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(key, f"expected true or false, not {describe(value)}")

    def text_map(self, key: str) -> dict[str, str]:
        """The string-to-string mapping at `key` (labels, annotations, ConfigMap data)."""
        inner = self.mapping(key)
        return {name: inner.text(name) or "" for name in inner.values}

    def texts(self, key: str) -> tuple[str, ...]:
        """The list of strings at `key` (command, args)."""
        return tuple(
            _string_item(self, key, index, item) for index, item in enumerate(self._list(key))
        )

    def items(self, key: str) -> list[Fields]:
        """The list of mappings at `key` (env, containers, filters ...)."""
        return [
            Fields(self.context, item, index_path(self.path_of(key), index))
            for index, item in enumerate(self._list(key))
        ]

    def _list(self, key: str) -> list[object]:
        value = self.values.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, not {describe(value)}")
        return value


def _string_item(fields: Fields, key: str, index: int, item: object) -> str:
    if isinstance(item, str):
        return item
    path = index_path(fields.path_of(key), index)
    raise fields.context.error(path, f"expected a string, not {describe(item)}")
