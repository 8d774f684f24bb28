"""Knative Services (serving.knative.dev/v1): what the runner needs, admitted as Serving would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shop.manifests.fields import Fields
from shop.manifests.objects import ManifestObject, Metadata

# knative/serving pkg/apis/serving/k8s_validation.go
RESERVED_ENV_VARS = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
# 8012/8013 queue-proxy HTTP/H2C, 8022 queue admin, 9090/9091 metrics, 8008 profiling
RESERVED_PORTS = frozenset({8012, 8013, 8022, 8008, 9090, 9091})
_PORT_NAMES = ("", "http1", "h2c")
# config-defaults: container-concurrency-max-limit and max-revision-timeout-seconds
MAX_CONTAINER_CONCURRENCY = 1000
MAX_TIMEOUT_SECONDS = 600
DEFAULT_TIMEOUT_SECONDS = 300  # revision-timeout-seconds, for a Service that sets none
_CONTAINERS = "spec.template.spec.containers"


@dataclass(frozen=True)
class KeyRef:
    """`valueFrom.configMapKeyRef` or `valueFrom.secretKeyRef`: one key of a ConfigMap/Secret."""

    name: str
    key: str
    optional: bool = False


@dataclass(frozen=True)
class EnvVar:
    """One `env` entry: a literal value, or a key of a ConfigMap or Secret."""

    name: str
    value: str | None = None
    config_map_key: KeyRef | None = None
    secret_key: KeyRef | None = None
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class EnvFrom:
    """One `envFrom` entry: every key of a ConfigMap or Secret, optionally prefixed."""

    source: Literal["ConfigMap", "Secret"]
    name: str
    optional: bool = False
    prefix: str = ""
    path: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True)
class Service(ManifestObject):
    """A Knative Service: its serving container and the revision settings the runner honours."""

    template_annotations: Mapping[str, str] = field(default_factory=dict)
    container_concurrency: int | None = None
    timeout_seconds: int | None = None
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[EnvFrom, ...] = ()
    working_dir: str | None = None
    container_port: int | None = None


def read_service(meta: Metadata) -> Service:
    """Admit a Knative Service and pick its serving container.

    With one container that is the one; with several (sidecars), Knative requires exactly one
    to declare a port, and that one serves.
    """
    template = meta.root.mapping("spec").mapping("template")
    pod = template.mapping("spec")
    containers = pod.items("containers")
    if not containers:
        raise pod.error("containers", "required (one container with command and args)")
    for container in containers:
        _admit_container(container)
    serving = _serving_container(pod, containers)
    concurrency = pod.integer("containerConcurrency")
    if concurrency is not None and not 0 <= concurrency <= MAX_CONTAINER_CONCURRENCY:
        raise pod.error(
            "containerConcurrency",
            f"{concurrency} is outside 0..{MAX_CONTAINER_CONCURRENCY} (0 means unlimited)",
        )
    timeout = pod.integer("timeoutSeconds")
    if timeout is not None and not 0 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise pod.error("timeoutSeconds", f"{timeout} is outside 0..{MAX_TIMEOUT_SECONDS}")
    ports = serving.items("ports")
    return Service(
        **meta.common(),
        template_annotations=template.mapping("metadata").text_map("annotations"),
        container_concurrency=concurrency,
        timeout_seconds=timeout,
        image=serving.text("image"),
        command=serving.texts("command"),
        args=serving.texts("args"),
        env=tuple(_env_var(item) for item in serving.items("env")),
        env_from=tuple(_env_from(item) for item in serving.items("envFrom")),
        working_dir=serving.text("workingDir"),
        container_port=ports[0].integer("containerPort") if ports else None,
    )


def _serving_container(pod: Fields, containers: list[Fields]) -> Fields:
    if len(containers) == 1:
        return containers[0]
    with_ports = [container for container in containers if container.has("ports")]
    if len(with_ports) != 1:
        raise pod.error(
            "containers",
            f"with {len(containers)} containers exactly one must declare a port "
            f"(found {len(with_ports)})",
        )
    return with_ports[0]


def _admit_container(container: Fields) -> None:
    for item in container.items("env"):
        name = item.required_text("name")
        if name in RESERVED_ENV_VARS:
            raise item.error("name", f"{name!r} is a reserved environment variable")
    ports = container.items("ports")
    if len(ports) > 1:
        raise container.error("ports", "more than one container port is set")
    if ports:
        port = ports[0].integer("containerPort")
        if port is not None and port in RESERVED_PORTS:
            raise ports[0].error("containerPort", f"{port} is a port reserved by Knative")
        if port is not None and not 0 <= port <= 65535:
            raise ports[0].error("containerPort", f"{port} is outside 0..65535")
        name = ports[0].text("name") or ""
        if name not in _PORT_NAMES:
            raise ports[0].error("name", f"{name!r} is not allowed (only 'http1' or 'h2c')")


def _env_var(item: Fields) -> EnvVar:
    name = item.required_text("name")
    if not item.has("valueFrom"):
        return EnvVar(name=name, value=item.text("value") or "", path=item.path)
    if item.text("value"):
        raise item.error("value", "may not be set together with valueFrom")
    value_from = item.mapping("valueFrom")
    sources = [key for key, value in value_from.values.items() if value is not None]
    if len(sources) != 1:
        raise value_from.error(
            None, f"expected exactly one source, got {', '.join(sources) or 'none'}"
        )
    if sources[0] == "configMapKeyRef":
        return EnvVar(
            name=name, config_map_key=_key_ref(value_from.mapping(sources[0])), path=item.path
        )
    if sources[0] == "secretKeyRef":
        return EnvVar(
            name=name, secret_key=_key_ref(value_from.mapping(sources[0])), path=item.path
        )
    raise value_from.error(
        sources[0], "not supported by `shop up` (only configMapKeyRef and secretKeyRef)"
    )


def _key_ref(ref: Fields) -> KeyRef:
    return KeyRef(
        name=ref.required_text("name"),
        key=ref.required_text("key"),
        optional=bool(ref.flag("optional")),
    )


def _env_from(item: Fields) -> EnvFrom:
    sources = [key for key in ("configMapRef", "secretRef") if item.has(key)]
    if len(sources) != 1:
        raise item.error(None, "expected exactly one of configMapRef and secretRef")
    ref = item.mapping(sources[0])
    return EnvFrom(
        source="ConfigMap" if sources[0] == "configMapRef" else "Secret",
        name=ref.required_text("name"),
        optional=bool(ref.flag("optional")),
        prefix=item.text("prefix") or "",
        path=item.path,
    )
