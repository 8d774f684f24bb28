"""checkov finds nothing wrong in the rendered chart, with project checks for Knative objects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chart.rendering import SENDER_IDENTITY, TRACING, helm_template, knative_services, render
from tests.conftest import REPO_ROOT, require

CHECKS_DIR = Path(__file__).resolve().parent / "checkov_checks"
PROJECT_CHECKS = ["CKV_SHOP_1", "CKV_SHOP_2", "CKV_SHOP_3", "CKV_SHOP_4", "CKV_SHOP_5"]
INSECURE = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: insecure
  namespace: shop
spec:
  template:
    spec:
      containers:
        - image: example.com/insecure@sha256:%s
          securityContext:
            privileged: true
            runAsUser: 0
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: lossy
  namespace: shop
spec: {}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: everything
  namespace: shop
spec:
  broker: lossy
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: insecure}
""" % ("0" * 64)


@pytest.fixture(scope="module")
def checkov() -> str:
    """checkov from $SHOP_CHECKOV, PATH or .tools/checkov (its own venv: its pins clash)."""
    candidates = [
        os.environ.get("SHOP_CHECKOV"),
        shutil.which("checkov"),
        str(REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"),
    ]
    found = next((c for c in candidates if c and Path(c).is_file()), None)
    require(found is not None, "checkov is not installed (SHOP_CHECKOV, PATH or .tools/checkov)")
    assert found is not None
    return found


def run_checkov(checkov: str, directory: Path, *extra: str) -> dict[str, Any]:
    command = [checkov, "--directory", str(directory), "--framework", "kubernetes"]
    command += ["--skip-download", "--output", "json", "--external-checks-dir", str(CHECKS_DIR)]
    result = subprocess.run(
        command + list(extra), capture_output=True, text=True, check=False, timeout=300
    )
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "checkov found nothing to scan"
    return report


@pytest.mark.parametrize(
    ("value_set", "assignments"),
    [
        pytest.param("default", [], id="default"),
        pytest.param("production", [], id="production"),
        pytest.param("default", ["migrations.mode=initContainer"], id="migrations-init-container"),
        pytest.param("production", list(SENDER_IDENTITY), id="sender-identity"),
        pytest.param("default", list(TRACING), id="tracing"),
        pytest.param(
            "production",
            ["tracing.enabled=true", "tracing.collector.exporterEndpoint=https://otlp.example.com"],
            id="tracing-production",
        ),
    ],
)
def test_checkov_fails_no_check_of_the_rendered_chart(
    checkov: str, helm4: str, value_set: str, assignments: list[str], tmp_path: Path
) -> None:
    result = helm_template(helm4, value_set, ["namespace.create=true", *assignments])
    assert result.returncode == 0, result.stderr
    (tmp_path / "chart.yaml").write_text(result.stdout)
    report = run_checkov(checkov, tmp_path)
    summary = report["summary"]
    failed = [
        f"{item['check_id']} {item['check_name']}: {item['resource']}"
        for item in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0 and summary["passed"] > 0
    passed = Counter(item["check_id"] for item in report["results"]["passed_checks"])
    services = len(knative_services(render(helm4, value_set, assignments)))
    for check in ("CKV_SHOP_1", "CKV_SHOP_2", "CKV_SHOP_3"):
        assert passed[check] == services, f"{check} did not look at every Knative Service"
    assert passed["CKV_SHOP_4"] == 1
    skipped = {(item["check_id"], item["resource"]) for item in report["results"]["skipped_checks"]}
    # Only the deliberate exceptions, each justified where it is declared.
    assert {check for check, _ in skipped} <= {"CKV_SHOP_5", "CKV_K8S_15", "CKV_K8S_43"}


def test_the_project_checks_fail_an_insecure_knative_setup(checkov: str, tmp_path: Path) -> None:
    (tmp_path / "insecure.yaml").write_text(INSECURE)
    report = run_checkov(checkov, tmp_path, "--check", ",".join(PROJECT_CHECKS))
    failed = {item["check_id"] for item in report["results"]["failed_checks"]}
    assert failed == set(PROJECT_CHECKS)
