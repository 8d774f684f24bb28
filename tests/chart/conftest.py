"""Fixtures of the chart tests: the helm binaries and the shared schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.rendering import find_helm
from tests.conftest import shared_path


@pytest.fixture(scope="session")
def helm4() -> str:
    return find_helm(4)


@pytest.fixture(scope="session")
def helm3() -> str:
    return find_helm(3)


@pytest.fixture(params=[4, 3], ids=["helm4", "helm3"])
def helm(request: pytest.FixtureRequest) -> str:
    """Each helm major version the chart must work with."""
    return find_helm(int(request.param))


@pytest.fixture(scope="session")
def knative_schemas() -> Path:
    return shared_path("schemas", "knative")


@pytest.fixture(scope="session")
def skaffold_schemas() -> Path:
    return shared_path("schemas", "skaffold")
