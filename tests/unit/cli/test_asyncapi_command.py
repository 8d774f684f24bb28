"""`shop asyncapi`: the AsyncAPI document of the catalog on a manifest folder (make asyncapi)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.asyncapi import DOCUMENT_FILE
from shop.cli import main
from tests.conftest import REPO_ROOT

MANIFESTS = str(REPO_ROOT / "manifests")


def test_it_writes_the_document_of_the_manifests(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    assert main(["asyncapi", "--manifests", MANIFESTS, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == DOCUMENT_FILE.read_text(encoding="utf-8")


def test_without_out_it_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["asyncapi", "--manifests", MANIFESTS]) == 0
    assert json.loads(capsys.readouterr().out)["asyncapi"] == "3.0.0"


def test_check_fails_on_a_stale_file_and_names_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asyncapi.json"
    out.write_text("{}\n", encoding="utf-8")
    assert main(["asyncapi", "--manifests", MANIFESTS, "--out", str(out), "--check"]) == 1
    assert "is stale: run `make asyncapi`" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "{}\n"
    assert main(["asyncapi", "--manifests", MANIFESTS, "--out", str(DOCUMENT_FILE), "--check"]) == 0


def test_a_missing_folder_or_a_check_without_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["asyncapi", "--manifests", str(tmp_path / "nothing")]) == 2
    assert "is not a folder of manifests" in capsys.readouterr().err
    assert main(["asyncapi", "--manifests", MANIFESTS, "--check"]) == 2
    assert "--check needs --out FILE" in capsys.readouterr().err


def test_a_producer_the_manifests_do_not_deploy_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in ("70-brokers.yaml", "80-triggers.yaml"):
        (manifests / name).write_text((REPO_ROOT / "manifests" / name).read_text())
    assert main(["asyncapi", "--manifests", str(manifests)]) == 2
    assert "customer produces user.created but has no SinkBinding" in capsys.readouterr().err
