"""What each local process runs: a Knative Service's command, args and environment, made local.

Every rule of how a pod's environment becomes a local process's environment lives here, in
`service_environment`, in one order (later steps win):

1. `inherit`: the variables of `shop up`'s own environment the profile lets through;
2. the profile's `defaults`;
3. the manifest's `envFrom` and `env` (ConfigMap and Secret refs resolved, `$(VAR)` expanded),
   with cluster addresses of Knative Services and of the broker ingress made local;
4. the profile's `replace`, for variables the manifest defines;
5. what Knative and the SinkBinding inject: PORT, K_SERVICE, K_CONFIGURATION, K_REVISION,
   K_SINK, K_CE_OVERRIDES, and HOST=127.0.0.1 so nothing listens beyond this machine;
   with sender identity on, the local issuer as OIDC_ISSUER and the SinkBinding's token file
   as OIDC_TOKEN_FILE (`shop.runner.identity`); with tracing on, the broker's OTLP receiver as
   OTEL_EXPORTER_OTLP_ENDPOINT and the service's name as OTEL_SERVICE_NAME (`otel_environment`);
6. PATH with the project's virtual environment's bin directory first;
7. `--env SERVICE:KEY=VALUE`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shop.manifests import Service, Topology, expand_references
from shop.runner.addresses import LOCAL_HOST, LocalAddresses
from shop.runner.config import EnvOverride, UpConfig
from shop.runner.identity import LocalIdentity
from shop.runner.profile import LocalProfile, fill

_CONTAINERS = "spec.template.spec.containers"


class PlanError(ValueError):
    """A run that cannot be planned (e.g. `--env` for a service that does not exist)."""


@dataclass(frozen=True)
class ProcessPlan:
    """One process `shop up` runs and supervises."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    url: str
    health_url: str
    service: Service | None = None


@dataclass(frozen=True)
class LocalContext:
    """What the profile's placeholders stand for, apart from the per-service ones."""

    state_dir: Path
    smtp_host: str
    smtp_port: int
    maildir: Path
    broker_url: str
    cwd: Path
    #: Where the services export their spans (the broker's port: its OTLP receiver); None:
    #: tracing off (`shop up --no-tracing`, or no broker runs).
    otlp_endpoint: str | None = None

    def placeholders(self, name: str, namespace: str, port: int) -> dict[str, str]:
        """Every placeholder's value for the process of `namespace/name` on `port`."""
        return {
            "state_dir": str(self.state_dir),
            "service": name,
            "namespace": namespace,
            "smtp_host": self.smtp_host,
            "smtp_port": str(self.smtp_port),
            "smtp_url": f"smtp://{self.smtp_host}:{self.smtp_port}",
            "maildir": str(self.maildir),
            "broker_url": self.broker_url,
            "port": str(port),
            "cwd": str(self.cwd),
        }


def display_names(
    services: Sequence[Service], taken: frozenset[str] = frozenset({"broker", "smtp"})
) -> dict[tuple[str, str], str]:
    """Each service's name in logs and tables: its name, or `namespace/name` where the name
    repeats or is one of `shop up`'s own processes (`taken`)."""
    counts: dict[str, int] = {}
    for service in services:
        counts[service.name] = counts.get(service.name, 0) + 1
    return {
        (service.namespace, service.name): (
            service.name
            if counts[service.name] == 1 and service.name not in taken
            else f"{service.namespace}/{service.name}"
        )
        for service in services
    }


def check_overrides(topology: Topology, overrides: Sequence[EnvOverride]) -> None:
    """Refuse an `--env` that names no Knative Service of the manifests (a typo is silent else)."""
    for override in overrides:
        if override.service == "*":
            continue
        if not any(override.applies_to(s.namespace, s.name) for s in topology.services):
            known = ", ".join(sorted({s.name for s in topology.services})) or "none"
            raise PlanError(
                f"--env {override.service}:{override.key}=...: no Knative Service "
                f"{override.service!r} in the manifests (services: {known})"
            )


def sink_environment(
    topology: Topology, service: Service, addresses: LocalAddresses
) -> dict[str, str]:
    """K_SINK and K_CE_OVERRIDES, as the SinkBinding that selects `service` would inject them.

    A binding whose sink does not resolve injects nothing (Knative reports it not ready and
    leaves the pod alone); `load_topology` lists it in `not_ready`.
    """
    binding = topology.sink_binding_for(service)
    if binding is None:
        return {}
    sink = addresses.resolve(topology, binding.sink, binding.namespace)
    if sink is None:
        return {}
    env = {"K_SINK": sink}
    if binding.ce_overrides:
        env["K_CE_OVERRIDES"] = json.dumps(
            {"extensions": dict(binding.ce_overrides)}, separators=(",", ":")
        )
    return env


# The OpenTelemetry SDK's endpoint variables: a manifest's name a cluster's collector.
OTEL_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def otel_environment(env: dict[str, str], service: str, endpoint: str | None) -> None:
    """Point the service's OpenTelemetry exporter at `endpoint` (OTLP/HTTP protobuf), or, with
    None, at nothing: a manifest's collector address means nothing on this machine."""
    for name in OTEL_ENDPOINTS:
        env.pop(name, None)
    if endpoint is None:
        return
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": service,
        }
    )


def service_environment(
    service: Service,
    topology: Topology,
    *,
    port: int,
    addresses: LocalAddresses,
    profile: LocalProfile,
    context: LocalContext,
    environ: Mapping[str, str],
    venv_bin: Path,
    overrides: Sequence[EnvOverride] = (),
    identity: LocalIdentity | None = None,
) -> dict[str, str]:
    """The whole environment of a Knative Service's local process (see the module docstring)."""
    placeholders = context.placeholders(service.name, service.namespace, port)
    env = profile.inherited(environ)
    env.update({key: fill(value, placeholders) for key, value in profile.defaults.items()})
    manifest = topology.resolve_env(service)
    env.update({key: addresses.localise(value) for key, value in manifest.items()})
    env.update(
        {
            key: fill(value, placeholders)
            for key, value in profile.replace.items()
            if key in manifest
        }
    )
    env.update(
        {
            "PORT": str(port),
            "HOST": LOCAL_HOST,
            "K_SERVICE": service.name,
            "K_CONFIGURATION": service.name,
            "K_REVISION": f"{service.name}-00001",
        }
    )
    env.update(sink_environment(topology, service, addresses))
    otel_environment(env, service.name, context.otlp_endpoint)
    if identity is not None:
        identity.environment(service, env)
    path = env.get("PATH") or os.defpath
    env["PATH"] = os.pathsep.join([str(venv_bin), path])
    env.update(
        {
            override.key: override.value
            for override in overrides
            if override.applies_to(service.namespace, service.name)
        }
    )
    return env


def service_port(
    service: Service, overrides: Sequence[EnvOverride], default: int | None
) -> int | None:
    """The service's local port: an `--env SERVICE:PORT=...` if given, else `default`."""
    for override in reversed(overrides):
        if override.key == "PORT" and override.applies_to(service.namespace, service.name):
            try:
                return int(override.value)
            except ValueError:
                raise PlanError(
                    f"--env {override.service}:PORT={override.value}: not a port number"
                ) from None
    return default


def service_argv(service: Service, env: Mapping[str, str], cwd: Path) -> tuple[str, ...]:
    """The container's command and args with `$(VAR)` expanded, as the kubelet would.

    The image is not used locally, so a Service without a `command` cannot run; and a command
    that is not found (the virtual environment's bin directory is searched first) is named
    with its manifest line rather than failing in a restart loop.
    """
    container = _serving_container_path(service)
    if not service.command:
        raise service.error(
            f"{container}.command",
            "required by `shop up`: the image is not used locally, so the container must say "
            "what to run (command, and args)",
        )
    argv = tuple(expand_references(part, env) for part in (*service.command, *service.args))
    executable = argv[0]
    if os.sep in executable:
        found = (cwd / executable).is_file() and os.access(cwd / executable, os.X_OK)
    else:
        found = shutil.which(executable, path=env.get("PATH")) is not None
    if not found:
        raise service.error(
            f"{container}.command",
            f"{executable!r} is not an executable file on PATH (searched {env.get('PATH')})",
        )
    return argv


def plan_service(
    service: Service,
    name: str,
    topology: Topology,
    *,
    port: int,
    addresses: LocalAddresses,
    profile: LocalProfile,
    context: LocalContext,
    config: UpConfig,
    environ: Mapping[str, str],
    identity: LocalIdentity | None = None,
) -> ProcessPlan:
    """The process of one Knative Service."""
    env = service_environment(
        service,
        topology,
        port=port,
        addresses=addresses,
        profile=profile,
        context=context,
        environ=environ,
        venv_bin=config.venv_bin,
        overrides=config.env_overrides,
        identity=identity,
    )
    url = addresses.url_of(service)
    return ProcessPlan(
        name=name,
        argv=service_argv(service, env, config.cwd),
        env=env,
        url=url,
        health_url=f"{url}/healthz",
        service=service,
    )


def plan_broker(
    config: UpConfig,
    profile: LocalProfile,
    context: LocalContext,
    environ: Mapping[str, str],
    identity: LocalIdentity | None = None,
) -> ProcessPlan:
    """The local broker: `shop broker` with this interpreter, serving every Broker on --port.

    It gets the inherited variables and the profile's defaults; `replace` and `--env` are
    about Knative Services.
    """
    placeholders = context.placeholders("broker", "", config.port)
    env = profile.inherited(environ)
    env.update({key: fill(value, placeholders) for key, value in profile.defaults.items()})
    env["PATH"] = os.pathsep.join([str(config.venv_bin), env.get("PATH") or os.defpath])
    url = f"http://{LOCAL_HOST}:{config.port}"
    argv = (
        config.python,
        "-m",
        "shop.cli",
        "broker",
        "--manifests",
        str(config.manifests),
        "--port",
        str(config.port),
        "--state-dir",
        str(config.state_dir),
        "--endpoints",
        str(config.endpoints_file),
        *(identity.broker_arguments() if identity is not None else ()),
        *(("--rabbitmq", config.rabbitmq) if config.rabbitmq is not None else ()),
        *(() if config.tracing else ("--no-tracing",)),
    )
    return ProcessPlan(name="broker", argv=argv, env=env, url=url, health_url=f"{url}/healthz")


def _serving_container_path(service: Service) -> str:
    """The field path of the container that serves (the only one, or the one with a port)."""
    lines = service.origin.lines
    index = 0
    while f"{_CONTAINERS}[{index + 1}]" in lines:
        index += 1
    if index == 0:
        return f"{_CONTAINERS}[0]"
    for candidate in range(index + 1):
        if f"{_CONTAINERS}[{candidate}].ports" in lines:
            return f"{_CONTAINERS}[{candidate}]"
    return _CONTAINERS
