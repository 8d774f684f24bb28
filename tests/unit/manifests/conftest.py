"""A manifest folder in tmp_path that tests fill with small YAML files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """An empty `manifests/` folder."""
    root = tmp_path / "manifests"
    root.mkdir()
    return root


@pytest.fixture
def write(manifest_dir: Path) -> Callable[[str, str], Path]:
    """Write a file (dedented, so YAML can be inlined) under the manifest folder."""

    def write_file(name: str, text: str) -> Path:
        path = manifest_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write_file
