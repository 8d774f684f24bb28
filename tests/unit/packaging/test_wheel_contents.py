"""The wheel carries what a service needs at run time besides its modules: the migrations."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# What `pip wheel` needs of the source tree (pyproject's packages and its readme).
SOURCES = ["pyproject.toml", "README.md", "wire", "kit", "catalog", "services", "shop"]


def migration_files() -> set[str]:
    """Every revision, history and template file of the kit's and the services' histories."""
    return {
        path.relative_to(REPO_ROOT).as_posix()
        for root in (REPO_ROOT / "kit", REPO_ROOT / "services")
        for path in root.rglob("migrations/**/*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.mark.slow
def test_the_wheel_holds_every_migration_history_and_the_revision_template(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy
        copy(REPO_ROOT / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    expected = migration_files()
    assert "kit/migrations/script.py.mako" in expected
    assert "services/order/migrations/versions/v0001_initial_schema.py" in expected
    with zipfile.ZipFile(wheel) as archive:
        assert expected - set(archive.namelist()) == set()
