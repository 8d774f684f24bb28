"""The local profile: which cluster values `shop up` replaces with local ones (data, not code)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Shipped next to this module; `shop up --profile FILE` replaces it.
DEFAULT_PROFILE = Path(__file__).with_name("local-profile.yaml")

# Every placeholder a profile value may use; `fill` is given all of them for each service.
PLACEHOLDERS = frozenset(
    {
        "state_dir",
        "service",
        "namespace",
        "smtp_host",
        "smtp_port",
        "smtp_url",
        "maildir",
        "broker_url",
        "port",
        "cwd",
    }
)
_SECTIONS = ("inherit", "defaults", "replace")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class ProfileError(ValueError):
    """A profile that cannot be used, named by file and key."""


@dataclass(frozen=True)
class LocalProfile:
    """The three sections of a profile file.

    `inherit`: patterns of `shop up`'s own environment variables every process gets.
    `defaults`: variables every process gets unless its manifest sets them.
    `replace`: local values for variables a manifest sets with a cluster-only meaning.
    """

    inherit: tuple[str, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)
    replace: Mapping[str, str] = field(default_factory=dict)
    source: str = "<profile>"

    def inherited(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables of `environ` that match an `inherit` pattern."""
        return {
            name: value
            for name, value in environ.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.inherit)
        }


def load_profile(path: Path) -> LocalProfile:
    """Read and check a profile file; every problem names the file and the key."""
    where = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProfileError(f"{where}: cannot read the profile: {error}") from None
    except yaml.YAMLError as error:
        raise ProfileError(f"{where}: invalid YAML: {error}") from None
    return parse_profile(document or {}, where)


def parse_profile(document: object, where: str) -> LocalProfile:
    """Check a profile's parsed YAML (a mapping of the three sections)."""
    if not isinstance(document, Mapping):
        raise ProfileError(f"{where}: expected a mapping with {', '.join(_SECTIONS)}")
    unknown = [str(key) for key in document if key not in _SECTIONS]
    if unknown:
        raise ProfileError(
            f"{where}: unknown section {unknown[0]!r} (expected {', '.join(_SECTIONS)})"
        )
    inherit = document.get("inherit") or []
    if not isinstance(inherit, list) or not all(isinstance(item, str) for item in inherit):
        raise ProfileError(f"{where}: inherit: expected a list of variable names or patterns")
    return LocalProfile(
        inherit=tuple(inherit),
        defaults=_values(document.get("defaults"), f"{where}: defaults"),
        replace=_values(document.get("replace"), f"{where}: replace"),
        source=where,
    )


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{name}` replaced by `values[name]`, and `{{`/`}}` by braces."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    return _TOKEN.sub(substitute, template)


def _values(section: object, where: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ProfileError(f"{where}: expected a mapping of variable name to value")
    values: dict[str, str] = {}
    for name, value in section.items():
        if not isinstance(value, str):
            raise ProfileError(
                f"{where}.{name}: expected a string, not {value!r} (quote numbers and booleans)"
            )
        _check_placeholders(value, f"{where}.{name}")
        values[str(name)] = value
    return values


def _check_placeholders(template: str, where: str) -> None:
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ProfileError(f"{where}: a lone {token!r} (write {token * 2} for a brace)")
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{item}}}" for item in sorted(PLACEHOLDERS))
            raise ProfileError(f"{where}: unknown placeholder {{{name}}} (known: {known})")
