"""Topologies from inline YAML, and the pieces a plan needs, for the runner's unit tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from shop.manifests import Topology, load_topology
from shop.runner.addresses import LocalAddresses
from shop.runner.plan import LocalContext

LoadTopology = Callable[[str], Topology]
BROKER_BASE = "http://127.0.0.1:8080"


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    root.mkdir()
    return root


@pytest.fixture
def topology_of(manifest_dir: Path) -> LoadTopology:
    """Write YAML (dedented) to `manifests/topology.yaml` and load it with the real loader."""

    def load(text: str) -> Topology:
        (manifest_dir / "topology.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
        return load_topology(manifest_dir)

    return load


def addresses_for(topology: Topology, first_port: int = 41000) -> LocalAddresses:
    """Ports 41000, 41001 ... for the topology's services, in manifest order."""
    return LocalAddresses(
        BROKER_BASE,
        {
            (service.namespace, service.name): first_port + index
            for index, service in enumerate(topology.services)
        },
    )


@pytest.fixture
def context(tmp_path: Path) -> LocalContext:
    return LocalContext(
        state_dir=tmp_path / "state",
        smtp_host="127.0.0.1",
        smtp_port=2525,
        maildir=tmp_path / "state" / "mail",
        broker_url=f"{BROKER_BASE}/shop/default",
        cwd=tmp_path,
    )
