"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.oidc import oidc_issuer  # noqa: F401  (a fixture of the unit tests)
from tests.support.recording_sink import RecordingSink

# Mutation runs (pyproject.toml [tool.mutmut]) pass --hypothesis-profile=mutation: the same
# examples for every mutant, and no deadline, which a slowed-down mutated function would miss.
settings.register_profile("mutation", derandomize=True, deadline=None, database=None)


@pytest.fixture(scope="session")
def broker_server() -> Iterator[RecordingSink]:
    with RecordingSink() as sink:
        yield sink


@pytest.fixture
def broker(broker_server: RecordingSink) -> RecordingSink:
    """A real HTTP server standing in for the broker's ingress: answers 202 unless told."""
    broker_server.status = 202
    broker_server.received.clear()
    return broker_server
