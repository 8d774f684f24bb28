"""Knative's names for the objects it makes for others (`knative.dev/pkg/kmeta.ChildName`)."""

from __future__ import annotations

import hashlib

_LONGEST_NAME = 63
_HEAD = _LONGEST_NAME - 32  # what is kept of a long parent name before its md5


def child_name(parent: str, suffix: str) -> str:
    """`kmeta.ChildName`: `parent + suffix`, or a hashed form within 63 characters.

    With a suffix of 31 characters or more the md5 is of `parent + suffix`, after at most 31
    characters of the parent, padded with the suffix's start to 63, trailing non-alphanumerics
    cut; with a shorter one, the parent is cut and its own md5 put before the suffix.
    """
    if len(parent) <= _LONGEST_NAME - len(suffix):
        return parent + suffix
    if _HEAD - len(suffix) <= 0:
        digest = hashlib.md5((parent + suffix).encode(), usedforsecurity=False).hexdigest()
        name = parent[:_HEAD] + digest
        name += suffix[: max(0, _LONGEST_NAME - len(name))]
        while name and not name[-1].isalnum():
            name = name[:-1]
        return name
    digest = hashlib.md5(parent.encode(), usedforsecurity=False).hexdigest()
    return parent[: _HEAD - len(suffix)] + digest + suffix
