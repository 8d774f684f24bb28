"""Small Knative manifests for `shop up` tests: echo-sink Services, SinkBindings, ConfigMaps...

Broker and Trigger builders come from tests.support.broker_process; `write_manifests` puts any
of them into a folder as YAML, the way `manifests/` is laid out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.broker_process import KSVC_API, broker_manifest, trigger_manifest

__all__ = [
    "broker_manifest",
    "config_map",
    "echo_service",
    "secret",
    "sink_binding",
    "trigger_manifest",
    "write_manifests",
]


def echo_service(
    name: str,
    namespace: str = "shop",
    *,
    env: Sequence[Mapping[str, Any]] = (),
    env_from: Sequence[Mapping[str, Any]] = (),
    args: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    command: Sequence[str] = ("python",),
) -> dict[str, Any]:
    """A Knative Service whose container runs tests/support/echo_sink.py (`args` appended)."""
    container: dict[str, Any] = {
        "image": f"dev.local/{name}",
        "command": list(command),
        "args": ["-m", "tests.support.echo_sink", *args],
        "ports": [{"name": "http1", "containerPort": 8080}],
    }
    if env:
        container["env"] = [dict(item) for item in env]
    if env_from:
        container["envFrom"] = [dict(item) for item in env_from]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": KSVC_API,
        "kind": "Service",
        "metadata": metadata,
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def sink_binding(
    name: str,
    sink: Mapping[str, Any],
    *,
    subject_name: str | None = None,
    match_labels: Mapping[str, str] | None = None,
    namespace: str = "shop",
    extensions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A SinkBinding of Knative Services (by name or labels) to `sink` (a Destination)."""
    subject: dict[str, Any] = {"apiVersion": KSVC_API, "kind": "Service"}
    if subject_name is not None:
        subject["name"] = subject_name
    else:
        subject["selector"] = {"matchLabels": dict(match_labels or {})}
    spec: dict[str, Any] = {"subject": subject, "sink": dict(sink)}
    if extensions:
        spec["ceOverrides"] = {"extensions": dict(extensions)}
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def broker_ref(name: str = "default") -> dict[str, Any]:
    """A Destination naming a Broker."""
    return {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": name}}


def config_map(name: str, data: Mapping[str, str], namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def secret(name: str, data: Mapping[str, str], namespace: str = "shop") -> dict[str, Any]:
    """A Secret with `data` base64-encoded, as `kubectl create secret` writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def write_manifests(
    directory: Path, objects: Iterable[Mapping[str, Any]], name: str = "topology.yaml"
) -> Path:
    """Write `objects` as one multi-document YAML file in `directory`; the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(yaml.safe_dump_all([dict(item) for item in objects]))
    return directory
