"""The local broker as a real process for tests: manifests written, started, stopped, killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.processes import free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
KSVC_API = "serving.knative.dev/v1"
EVENTING_API = "eventing.knative.dev/v1"
CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
RABBITMQ_CLASS = "RabbitMQBroker"


def broker_manifest(name: str = "default", namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    """A Broker; `delivery=...` and other spec fields as keyword arguments."""
    return {
        "apiVersion": EVENTING_API,
        "kind": "Broker",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def trigger_manifest(
    name: str,
    subscriber: str | Mapping[str, Any],
    broker: str = "default",
    namespace: str = "shop",
    **spec: Any,
) -> dict[str, Any]:
    """A Trigger; `subscriber` is a ksvc name (a ref) or a full Destination mapping."""
    destination = (
        {"ref": {"apiVersion": KSVC_API, "kind": "Service", "name": subscriber}}
        if isinstance(subscriber, str)
        else dict(subscriber)
    )
    return {
        "apiVersion": EVENTING_API,
        "kind": "Trigger",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"broker": broker, "subscriber": destination, **spec},
    }


def service_manifest(name: str, namespace: str = "shop", **pod: Any) -> dict[str, Any]:
    """A Knative Service (the broker only needs it to exist; the runner would start it)."""
    return {
        "apiVersion": KSVC_API,
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"image": "dev.local/sub", "command": ["true"]}],
                    **pod,
                }
            }
        },
    }


class BrokerProcess:
    """`shop broker` in a subprocess, with its manifests, endpoints file and state dir."""

    def __init__(
        self,
        directory: Path,
        manifests: Iterable[Mapping[str, Any]],
        endpoints: Mapping[str, str],
        *extra_args: str,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = directory / "state"
        self.log_path = directory / "broker.log"
        manifest_dir = directory / "manifests"
        manifest_dir.mkdir(parents=True, exist_ok=True)
        self._manifest_file = manifest_dir / "topology.yaml"
        self._brokers: list[Mapping[str, Any]] = []
        self.write_manifests(manifests)
        endpoints_file = directory / "endpoints.json"
        endpoints_file.write_text(json.dumps(dict(endpoints)))
        self.args = [
            sys.executable,
            "-m",
            "shop.cli",
            "broker",
            "--manifests",
            str(manifest_dir),
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--endpoints",
            str(endpoints_file),
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def write_manifests(self, manifests: Iterable[Mapping[str, Any]]) -> None:
        """Replace the manifests; the broker reads them at its next start."""
        documents = list(manifests)
        self._manifest_file.write_text(yaml.safe_dump_all(documents))
        self._brokers = [d["metadata"] for d in documents if d.get("kind") == "Broker"]

    @property
    def database(self) -> Path:
        return self.state_dir / "broker" / "broker.db"

    def ingress(self, name: str = "default", namespace: str | None = None) -> str:
        """The ingress URL of a Broker (by default in the namespace of the first Broker)."""
        if namespace is None:
            namespace = str(self._brokers[0]["namespace"]) if self._brokers else "shop"
        return f"{self.url}/{namespace}/{name}"

    def _rabbitmq_brokers(self) -> list[str]:
        """`namespace/name` of the Brokers of class RabbitMQBroker."""
        return [
            f"{m['namespace']}/{m['name']}"
            for m in self._brokers
            if (m.get("annotations") or {}).get(CLASS_ANNOTATION) == RABBITMQ_CLASS
        ]

    def start(self, timeout: float = 20.0) -> BrokerProcess:
        """Start the process; return once it is healthy and each RabbitMQBroker has either
        connected or failed its first connect (its ingress answers 503 before that)."""
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._healthy, timeout=timeout, what=f"the broker's /healthz ({self.log_path})")
        for broker in self._rabbitmq_brokers():
            wait_for(
                partial(self._first_connect, broker, logged_before),
                timeout=timeout,
                what=f"broker {broker}'s first connect to RabbitMQ ({self.log_path})",
            )
        return self

    def _first_connect(self, broker: str, logged_before: int) -> bool:
        """Whether the log since `logged_before` says `broker` connected or could not."""
        with self.log_path.open("rb") as log:
            log.seek(logged_before)
            text = log.read().decode(errors="replace")
        return any(
            f"broker {broker}: {outcome}" in text for outcome in ("on RabbitMQ", "cannot reach")
        )

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the broker exited: {self.logs()[-3000:]}")
        return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, and the exit code (SIGKILL if it does not stop within `timeout`)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the broker did not stop within {timeout}s") from None

    def kill(self) -> None:
        """`kill -9`: no chance to flush or clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON log line the broker wrote."""
        records = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def get(self, path: str) -> Any:
        """GET a broker endpoint and return its JSON."""
        response = requests.get(f"{self.url}{path}", timeout=5)
        response.raise_for_status()
        return response.json()

    def metrics(self) -> dict[str, float]:
        """`/metrics` as {"name{labels}": value}."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples
