"""`helm lint --strict` passes with helm 4 and helm 3 for every value set."""

from __future__ import annotations

import subprocess

import pytest

from tests.chart.rendering import CHART, VALUE_SETS, values_args


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_passes_strict_lint(helm: str, value_set: str) -> None:
    # lint cannot pass --api-versions, so the Knative capabilities check is switched off.
    command = [helm, "lint", "--strict", str(CHART), "--set", "capabilitiesCheck=false"]
    result = subprocess.run(
        command + values_args(value_set), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
