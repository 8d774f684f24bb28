"""An event from command-line options: `--data JSON` or `--field a.b=value`, `--extension k=v`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class OptionError(ValueError):
    """An option value that cannot become part of the event; the message names the option."""


def data_text(data: str | None, fields: Sequence[str]) -> str | None:
    """The event data as text: `--data` (`@file` reads a file), or the object `--field`s build."""
    if data is not None and fields:
        raise OptionError("give --data or --field, not both")
    if data is not None:
        if data.startswith("@"):
            try:
                return Path(data[1:]).read_text(encoding="utf-8")
            except OSError as error:
                raise OptionError(f"--data {data}: {error.strerror}") from None
        return data
    if fields:
        return json.dumps(build_object(fields))
    return None


def build_object(fields: Sequence[str]) -> dict[str, Any]:
    """`a.b=1`, `a.c=x` -> {"a": {"b": 1, "c": "x"}}: values that parse as JSON are JSON."""
    document: dict[str, Any] = {}
    for item in fields:
        path, equals, raw = item.partition("=")
        keys = path.split(".")
        if not equals or not all(keys):
            raise OptionError(f"--field {item!r}: expected a.b.c=value")
        target = document
        for depth, key in enumerate(keys[:-1]):
            child = target.setdefault(key, {})
            if not isinstance(child, dict):
                taken = ".".join(keys[: depth + 1])
                raise OptionError(f"--field {item!r}: {taken} is set to a value already")
            target = child
        if keys[-1] in target:
            raise OptionError(f"--field {item!r}: {path} is set twice")
        target[keys[-1]] = _value(raw)
    return document


def extensions(items: Sequence[str]) -> dict[str, str]:
    """`--extension name=value` options as a mapping."""
    found: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise OptionError(f"--extension {item!r}: expected name=value")
        found[name] = value
    return found


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
