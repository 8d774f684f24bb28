"""A service image installs `[project] dependencies` only: no service may need the tool's extras."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from shop.cli import TOOL_MODULES
from tests.conftest import REPO_ROOT

# Every module of the libraries and the services, imported with the dev tool's packages hidden.
_PROBE = """
import importlib, importlib.abc, pkgutil, sys

HIDDEN = set(sys.argv[1].split(","))

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ImportError(f"{name} is not in a service image")
        return None

sys.meta_path.insert(0, Hide())
for package in ("wire", "kit", "catalog", "services"):
    importlib.import_module(package)
    for module in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
        importlib.import_module(module.name)
print("imported")
"""


def _tool_modules() -> list[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # The import name of each distribution: these use `_` where their distribution name has `-`.
    names = {
        requirement.split(">")[0]
        .split("<")[0]
        .split(";")[0]
        .split("[")[0]
        .strip()
        .replace("-", "_")
        for requirement in pyproject["project"]["optional-dependencies"]["tool"]
    }
    return [*sorted(names), "shop"]


def test_the_tool_extra_holds_what_only_the_dev_tool_needs() -> None:
    assert _tool_modules() == ["aio_pika", "aiohttp", "aiosmtpd", "kubernetes", "uvloop", "shop"]
    assert sorted(TOOL_MODULES) == _tool_modules()[:-1]


def test_the_cli_names_the_extra_when_one_of_its_packages_is_missing(tmp_path: Path) -> None:
    # `shop up` imports its runner (aiohttp, aiosmtpd) when it runs, before it starts anything.
    hide_aiohttp = (
        "import sys; sys.modules['aiohttp'] = None; from shop.cli import main; "
        "sys.exit(main(['up', '--state-dir', sys.argv[1]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_aiohttp, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "shop up: aiohttp is not installed: the dev tool needs its extra, "
        "`pip install 'knative-shop[tool]'` (`make up` installs it)"
    )


def test_every_library_and_service_module_imports_without_the_tool_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(_tool_modules())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "imported"
