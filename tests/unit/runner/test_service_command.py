"""A Knative Service's command and args as the local process runs them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from shop.manifests import ManifestError
from shop.runner.config import UpConfig
from shop.runner.plan import LocalContext, plan_broker, service_argv
from shop.runner.profile import LocalProfile
from tests.unit.runner.conftest import LoadTopology

VENV_BIN = str(Path(sys.executable).parent)


def _service(command: str, args: str = "[]") -> str:
    return f"""
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {{name: order, namespace: shop}}
        spec:
          template:
            spec:
              containers:
                - image: kind.local/shop-order
                  command: {command}
                  args: {args}
    """


def test_command_and_args_expand_variables_of_the_final_environment(
    topology_of: LoadTopology, tmp_path: Path
) -> None:
    service = topology_of(
        _service(
            "[python]",
            "['-m', 'app', '--bind=$(HOST):$(PORT)', '$(K_SERVICE)', '$$(PORT)', '$(UNSET)']",
        )
    ).services[0]
    env = {"PATH": VENV_BIN, "HOST": "127.0.0.1", "PORT": "41000", "K_SERVICE": "order"}

    argv = service_argv(service, env, tmp_path)

    assert argv == (
        "python",
        "-m",
        "app",
        "--bind=127.0.0.1:41000",
        "order",
        "$(PORT)",  # $$ escapes, as the kubelet does
        "$(UNSET)",  # an undefined reference stays as written
    )


def test_a_service_without_a_command_is_an_error_naming_file_line_object_and_field(
    topology_of: LoadTopology, tmp_path: Path
) -> None:
    text = """
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: order, namespace: shop}
        spec:
          template:
            spec:
              containers:
                - image: kind.local/shop-order
    """
    service = topology_of(text).services[0]

    with pytest.raises(ManifestError) as raised:
        service_argv(service, {"PATH": VENV_BIN}, tmp_path)

    error = raised.value
    assert error.file.endswith("topology.yaml")
    assert error.line == 8  # the container
    assert error.obj == "Service shop/order"
    assert error.path == "spec.template.spec.containers[0].command"
    assert "the image is not used locally" in str(error)


def test_a_command_not_found_on_path_is_an_error_naming_the_manifest_line(
    topology_of: LoadTopology, tmp_path: Path
) -> None:
    service = topology_of(_service("[no-such-program-anywhere]")).services[0]

    with pytest.raises(ManifestError) as raised:
        service_argv(service, {"PATH": VENV_BIN}, tmp_path)

    assert raised.value.path == "spec.template.spec.containers[0].command"
    assert raised.value.line == 9  # the command field
    assert "'no-such-program-anywhere' is not an executable file on PATH" in str(raised.value)


def test_a_command_is_found_in_the_virtual_environment_first(
    topology_of: LoadTopology, tmp_path: Path
) -> None:
    service = topology_of(_service("[pytest]")).services[0]

    argv = service_argv(service, {"PATH": os.pathsep.join([VENV_BIN, "/nowhere"])}, tmp_path)

    assert argv == ("pytest",)


def test_a_relative_command_path_is_looked_up_in_the_working_directory(
    topology_of: LoadTopology, tmp_path: Path
) -> None:
    script = tmp_path / "bin" / "serve"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    service = topology_of(_service("[./bin/serve]")).services[0]

    assert service_argv(service, {"PATH": "/nowhere"}, tmp_path) == ("./bin/serve",)


def test_the_broker_runs_with_this_interpreter_and_reads_the_endpoints_file(
    tmp_path: Path, context: LocalContext
) -> None:
    config = UpConfig(manifests=Path("manifests"), state_dir=tmp_path / "state", port=18080)
    profile = LocalProfile(inherit=("PATH",), defaults={"PYTHONUNBUFFERED": "1"})

    plan = plan_broker(config, profile, context, {"PATH": "/usr/bin", "OTHER": "x"})

    assert plan.argv == (
        sys.executable,
        *("-m", "shop.cli", "broker", "--manifests", "manifests", "--port", "18080"),
        *("--state-dir", str(tmp_path / "state")),
        *("--endpoints", str(tmp_path / "state" / "run" / "endpoints.json")),
    )
    assert plan.env == {"PATH": f"{VENV_BIN}:/usr/bin", "PYTHONUNBUFFERED": "1"}
    assert plan.health_url == "http://127.0.0.1:18080/healthz"


def test_the_broker_gets_the_rabbitmq_of_shop_up(tmp_path: Path, context: LocalContext) -> None:
    url = "amqp://shop:secret@rabbit:5672/shop"
    config = UpConfig(manifests=Path("m"), state_dir=tmp_path, port=18080, rabbitmq=url)

    plan = plan_broker(config, LocalProfile(), context, {})

    assert plan.argv[-2:] == ("--rabbitmq", url)
