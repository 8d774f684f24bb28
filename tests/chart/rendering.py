"""Rendering the chart for the tests: helm binaries, value sets, documents and schemas."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.conftest import REPO_ROOT, require

CHART = REPO_ROOT / "charts" / "shop"
MANIFESTS = REPO_ROOT / "manifests"
# The value sets the chart is linted and rendered with: name -> values file (None: defaults).
VALUE_SETS: dict[str, Path | None] = {
    "default": None,
    "kafka": CHART / "values-kafka.yaml",
    "rabbitmq": CHART / "values-rabbitmq.yaml",
    "production": CHART / "values-production.yaml",
}
Document = dict[str, Any]
# Sender identity on, and the viewer's write actions behind a token: what the chart adds to the
# default values' documents (a projected ServiceAccount token, a Secret volume, audiences, the
# EventPolicy).
SENDER_IDENTITY = (
    "senderIdentity.enabled=true",
    "viewer.writeActions=token",
    "viewer.writeToken.existingSecret=shop-viewer-write-token",
)

# Traces on with the in-chart collector, Jaeger behind it and Knative's config-observability:
# every object the tracing values can add.
TRACING = (
    "tracing.enabled=true",
    "tracing.jaeger.enabled=true",
    "tracing.knative.configure=true",
)


def load_script(name: str, path: Path) -> ModuleType:
    """A Python file outside the packages (hack/, the chart's files/) imported as `name`."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def render_module() -> ModuleType:
    """hack/render_manifests.py, the one place that knows how manifests/ is rendered."""
    return load_script("render_manifests", REPO_ROOT / "hack" / "render_manifests.py")


def saga_module() -> ModuleType:
    """charts/shop/files/saga_check.py: the saga check `helm test` runs in the cluster."""
    return load_script("saga_check", CHART / "files" / "saga_check.py")


def helm_version(helm: str) -> str:
    """What `helm version --short` says ("" when it does not run)."""
    try:
        result = subprocess.run(
            [helm, "version", "--short"], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()


# Where `make tools` (hack/get-tools.sh) installs each helm major version.
TOOLS_HELM = {4: REPO_ROOT / ".tools" / "bin" / "helm", 3: REPO_ROOT / ".tools" / "helm3" / "helm"}


def find_helm(major: int) -> str:
    """helm `major`: $SHOP_HELM4 / $SHOP_HELM3 when set, else .tools/ (`make tools`), else PATH."""
    override = os.environ.get(f"SHOP_HELM{major}")
    if override:
        require(
            is_helm(override, major),
            f"SHOP_HELM{major}={override} is not helm {major} -> unset it, or `make tools`",
        )
        return override
    found = next(
        (c for c in (str(TOOLS_HELM[major]), shutil.which("helm")) if is_helm(c, major)), None
    )
    require(found is not None, f"helm {major} is not installed -> run `make tools`")
    assert found is not None
    return found


@functools.cache
def is_helm(path: str | None, major: int) -> bool:
    """Whether `path` is a helm binary of that major version (asked once per session)."""
    return path is not None and Path(path).is_file() and helm_version(path).startswith(f"v{major}.")


def values_args(value_set: str) -> list[str]:
    path = VALUE_SETS[value_set]
    return [] if path is None else ["--values", str(path)]


def helm_template(
    helm: str,
    value_set: str = "default",
    set_values: Iterable[str] = (),
    *,
    include_tests: bool = True,
    api_versions: Iterable[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`helm template` as hack/render_manifests.py runs it, without raising on failure."""
    render = render_module()
    command = [helm, "template", render.RELEASE, str(CHART), "--namespace", render.NAMESPACE]
    command += ["--kube-version", render.KUBE_VERSION]
    for api_version in render.KNATIVE_API_VERSIONS if api_versions is None else api_versions:
        command += ["--api-versions", api_version]
    command += values_args(value_set)
    for assignment in set_values:
        command += ["--set", assignment]
    if not include_tests:
        command.append("--skip-tests")
    return subprocess.run(command, capture_output=True, text=True, check=False)


def render(
    helm: str, value_set: str = "default", set_values: Iterable[str] = (), **options: Any
) -> list[Document]:
    """The rendered documents; the test fails with helm's message when rendering fails."""
    result = helm_template(helm, value_set, set_values, **options)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def group_of(doc: Document) -> str:
    return str(doc.get("apiVersion", "")).rpartition("/")[0]


def of_kind(docs: Iterable[Document], kind: str, group: str | None = None) -> list[Document]:
    return [d for d in docs if d.get("kind") == kind and (group is None or group_of(d) == group)]


def knative_services(docs: Iterable[Document]) -> dict[str, Document]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, "Service", "serving.knative.dev")}


def by_name(docs: Iterable[Document]) -> dict[str, Document]:
    return {d["metadata"]["name"]: d for d in docs}


def container(ksvc: Document) -> Document:
    containers = ksvc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, ksvc["metadata"]["name"]
    return dict(containers[0])


def env_of(ksvc: Document) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom")) for item in container(ksvc)["env"]
    }


def chart_values() -> Document:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a nested mapping."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    else:
        yield path, value
