"""skaffold.yaml validates against skaffold's v4beta13 schema and names things that exist."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.rendering import chart_values, walk
from tests.conftest import REPO_ROOT

SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(skaffold_schemas: Path) -> jsonschema.Draft7Validator:
    schema = json.loads((skaffold_schemas / "v4beta13.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def release() -> dict[str, Any]:
    (only,) = SKAFFOLD["deploy"]["helm"]["releases"]
    return dict(only)


def test_skaffold_yaml_validates_against_v4beta13(validator: jsonschema.Draft7Validator) -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta13"
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(SKAFFOLD)]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelled_field(
    validator: jsonschema.Draft7Validator,
) -> None:
    broken = copy.deepcopy(SKAFFOLD)
    broken["deploy"]["helm"]["releases"][0]["chartPth"] = "charts/shop"
    assert not validator.is_valid(broken)


def test_every_path_skaffold_names_exists() -> None:
    for artifact in SKAFFOLD["build"]["artifacts"]:
        context = REPO_ROOT / artifact.get("context", ".")
        assert (context / artifact["docker"]["dockerfile"]).is_file(), artifact["image"]
    assert (REPO_ROOT / release()["chartPath"] / "Chart.yaml").is_file()
    values_files = list(release().get("valuesFiles", []))
    for profile in SKAFFOLD["profiles"]:
        for patch in profile.get("patches", []):
            if patch["path"].endswith("/valuesFiles"):
                values_files += patch["value"]
    assert values_files, "the kafka profile adds its values file"
    for path in values_files:
        assert (REPO_ROOT / path).is_file(), path
    for hook in SKAFFOLD["deploy"]["helm"]["hooks"]["after"]:
        script = REPO_ROOT / hook["host"]["command"][0]
        assert script.is_file() and script.stat().st_mode & 0o111, script


def test_there_is_one_artifact_per_service_built_from_its_dockerfile_target() -> None:
    services = set(chart_values()["services"])
    artifacts = {a["image"]: a for a in SKAFFOLD["build"]["artifacts"]}
    assert set(artifacts) == {f"shop-{name}" for name in services}
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^FROM runtime AS ([a-z]+)$", dockerfile, re.MULTILINE))
    assert targets == services
    for name in services:
        assert artifacts[f"shop-{name}"]["docker"]["target"] == name


def test_image_value_templates_point_at_chart_values_that_exist() -> None:
    templates = release()["setValueTemplates"]
    value_paths = {path for path, _ in walk(chart_values())}
    for name in chart_values()["services"]:
        key = name.replace("-", "_")
        assert templates[f"services.{name}.image.repository"] == f"{{{{.IMAGE_REPO_shop_{key}}}}}"
        assert templates[f"services.{name}.image.tag"] == f"{{{{.IMAGE_TAG_shop_{key}}}}}"
    for path in list(templates) + list(release()["setValues"]):
        assert path in value_paths, f"{path} is not a key of charts/shop/values.yaml"


def test_profiles_for_kind_and_minikube_activate_by_kube_context_and_kafka_is_offered() -> None:
    profiles = {profile["name"]: profile for profile in SKAFFOLD["profiles"]}
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-.*"}]
    assert profiles["minikube"]["activation"] == [{"kubeContext": "minikube"}]
    (patch,) = profiles["kafka"]["patches"]
    assert patch["value"] == ["charts/shop/values-kafka.yaml"]


def test_the_broker_ingress_is_port_forwarded_where_shop_up_listens() -> None:
    forwards = {f["resourceName"]: f for f in SKAFFOLD["portForward"]}
    ingress = forwards["broker-ingress"]
    assert (ingress["namespace"], ingress["port"], ingress["localPort"]) == (
        "knative-eventing",
        80,
        8080,
    )
