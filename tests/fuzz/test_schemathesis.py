"""Schemathesis against the JSON APIs of order, customer and inventory, each live under gunicorn.

Each service's `GET /openapi.json` (kit/openapi.py) is loaded from the running service
of one `shop up` of the manifests (tests/fuzz/fuzzed_shop.py), and every operation it documents,
the kit's included, gets about MAX_EXAMPLES generated requests, valid and invalid ones. Every
answer must be no 5xx, a documented status with a documented Content-Type, and a body its
schema allows. What a write created (its Location) is fed to the reads of the same paths, so
that they answer 200 too, not only 404. A failure is a defect of the service or of its document.

Hypothesis drives schemathesis' strategies directly: `schemathesis.pytest.from_fixture` (the
document only exists once `shop up` runs) does not work with pytest 9.2 (it sets `Node._nodeid`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.fuzzed_shop import endpoint, fuzzed_shop
from tests.support.shop_up import ShopUp

pytestmark = pytest.mark.slow

SERVICES = ("order", "customer", "inventory")
MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    with fuzzed_shop(tmp_path_factory.mktemp("schemathesis")) as running:
        yield running


@pytest.mark.parametrize("service", SERVICES)
def test_the_api_does_what_its_document_says(
    service: str, shop: ShopUp, subtests: pytest.Subtests
) -> None:
    url = endpoint(shop, service).url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=10)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    # Schemathesis leaves out the operation that serves the document itself.
    assert {operation.label for operation in operations} == documented - {"GET /openapi.json"}
    created: list[str] = []  # the Location of every 201
    with requests.Session() as session:
        # Writes first, so that reads also ask for what exists.
        for operation in sorted(operations, key=lambda operation: operation.method == "get"):
            with subtests.test(msg=operation.label):
                fuzz(operation, session, url, created)


def fuzz(operation: APIOperation, session: requests.Session, url: str, created: list[str]) -> None:
    """MAX_EXAMPLES requests to one operation, valid and invalid ones, each answer checked."""
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    existing = existing_parameters(operation.path, created)
    if existing:
        strategies.append(
            st.sampled_from(existing).flatmap(
                lambda parameters: operation.as_strategy(path_parameters=parameters)
            )
        )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(strategies))
    def run(case: Case) -> None:
        response = case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=10)
        if response.status_code == 201:
            created.extend(response.headers["location"])

    run()


def existing_parameters(path: str, created: list[str]) -> list[dict[str, str]]:
    """The path parameters of `path` (`/orders/{order_id}`) that name something created."""
    pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))
    return [
        {name: unquote(value) for name, value in found.groupdict().items()}
        for found in map(pattern.fullmatch, created)
        if found is not None
    ]
