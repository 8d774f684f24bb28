"""One service image, built with podman from the Dockerfile and run as the cluster runs it.

No registry is reachable here, so the base is a Debian bookworm made with debootstrap
(hack/local-base-image.sh, cached as a local image) and the wheels are built on the host
(WHEELS=local); see ../shared/docs/containers.md. The container runs with a read-only root file
system, no capabilities and its image's own non-root user, and gets a CloudEvent.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator

import pytest
import requests

from catalog import load_catalog
from tests.conftest import REPO_ROOT, require

pytestmark = pytest.mark.slow

SERVICE = "order"
BASE_IMAGE = "localhost/shop-bookworm-python:1"
IMAGE = f"localhost/shop-{SERVICE}:image-test"
WHEELS = REPO_ROOT / "build" / "wheels"
# podman's defaults (crun, unlimited rlimits) fail on cgroup-v1 machines such as CI's.
PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def requirements() -> str:
    """The project's runtime dependencies, as the Dockerfile's requirements stage lists them."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return "\n".join(pyproject["project"]["dependencies"]) + "\n"


def build_wheels() -> None:
    """Wheels of the dependencies for the base's Python (3.11, as the host's), reused if current."""
    wanted = requirements()
    stamp = WHEELS / ".requirements"
    if stamp.is_file() and stamp.read_text() == wanted and any(WHEELS.glob("*.whl")):
        return
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    listed = WHEELS / ".requirements.txt"
    listed.write_text(wanted)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELS), "-r", listed],
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stamp.write_text(wanted)


@pytest.fixture(scope="module")
def image() -> str:
    require(shutil.which("podman") is not None, "podman is not installed")
    require(shutil.which("debootstrap") is not None, "debootstrap is not installed")
    require(os.geteuid() == 0, "building the base image with debootstrap needs root")
    base = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "local-base-image.sh"), BASE_IMAGE],
        capture_output=True,
        check=False,
        text=True,
        timeout=900,
    )
    assert base.returncode == 0, base.stdout + base.stderr
    build_wheels()
    built = podman(
        "build",
        *ULIMITS,
        "--isolation",
        "chroot",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "--build-arg",
        "WHEELS=local",
        "--target",
        SERVICE,
        "--tag",
        IMAGE,
        "--file",
        str(REPO_ROOT / "Dockerfile"),
        str(REPO_ROOT),
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return IMAGE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str]]:
    """The service, read-only and non-root, with its SQLite database on a tmpfs; (name, URL)."""
    name = f"shop-image-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = podman(
        "run",
        "--detach",
        "--name",
        name,
        *ULIMITS,
        "--read-only",
        "--tmpfs",
        "/data:rw,size=32m,mode=1777",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--publish",
        f"127.0.0.1:{port}:8080",
        "--env",
        f"DATABASE_URL=sqlite:////data/{SERVICE}.db",
        image,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman("rm", "--force", "--time", "2", name, timeout=60)


def wait_healthy(name: str, url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/healthz", timeout=2)
        except requests.RequestException as error:
            last = str(error)
        else:
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text}"
        time.sleep(0.3)
    logs = podman("logs", name, timeout=30)
    pytest.fail(f"/healthz not ready in {seconds} s: {last}\n{logs.stdout}{logs.stderr}")


def test_the_image_runs_read_only_as_non_root_and_handles_a_cloudevent(
    container: tuple[str, str],
) -> None:
    name, url = container
    wait_healthy(name, url)
    from services.order.handlers import handlers

    event_type = sorted(handlers.by_type)[0]
    data = load_catalog()[event_type].examples[0]
    response = requests.post(
        url,
        data=json.dumps(data),
        headers={
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "/tests/image",
            "ce-type": event_type,
            "ce-subject": str(data.get("order_id", "s-1")),
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code in (200, 202), response.text
    if response.status_code == 200:
        assert response.headers.get("ce-type") or response.headers["Content-Type"].startswith(
            "application/cloudevents+json"
        ), "a 200 must carry a reply CloudEvent"
    else:
        assert response.content == b""
    uid = podman("exec", name, "python3", "-c", "import os; print(os.getuid())", timeout=30)
    assert uid.stdout.strip() not in ("", "0"), uid.stderr
    pid1 = podman("exec", name, "cat", "/proc/1/cmdline", timeout=30)
    assert pid1.stdout.split("\0")[1].endswith("gunicorn"), pid1.stdout


def test_the_image_declares_a_numeric_non_root_user_and_an_exec_form_entrypoint(
    image: str,
) -> None:
    inspected = podman("image", "inspect", image, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)[0]["Config"]
    user, _, group = config["User"].partition(":")
    assert user.isdigit() and int(user) >= 10000 and group.isdigit()
    assert config["Entrypoint"] == ["gunicorn", "-c", "python:kit.gunicorn_conf"]
    assert config["Cmd"] == [f"services.{SERVICE}.app:create_app()"]
    probe = podman(
        "run", "--rm", *ULIMITS, "--entrypoint", "sh", image, "-c", "command -v gcc cc make || true"
    )
    assert probe.stdout.strip() == "", f"build tools in the final image: {probe.stdout}"
