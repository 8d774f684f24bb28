"""The scripts under hack/ parse, and the Dockerfile keeps the shape the images rely on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "hack").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_shell_scripts_parse_and_are_executable(script: Path) -> None:
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert script.stat().st_mode & 0o111
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


def test_the_dockerfile_pins_its_base_and_runs_gunicorn_as_non_root_in_exec_form() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.12-slim@sha256:[0-9a-f]{64}$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and all(re.fullmatch(r"[1-9]\d*:[1-9]\d*", user) for user in users)
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    assert json.loads(entrypoint)[:3] == ["gunicorn", "-c", "python:kit.gunicorn_conf"]
    for command in re.findall(r"^CMD (.+)$", text, re.M):
        assert re.fullmatch(r"services\.[a-z]+\.app:create_app\(\)", json.loads(command)[0])


def test_the_docker_context_leaves_out_everything_but_the_services() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!services/"} <= set(rules)
