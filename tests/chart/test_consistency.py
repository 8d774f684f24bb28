"""The chart and the code agree: handlers and Triggers, the catalog and EventTypes, the contract.

The handler sets (`services.<name>.handlers.handlers`) and the catalog (`catalog`) are the
code's side; the rendered chart is the cluster's side; docs/design.md's contract table is the
agreement between them.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest

from catalog import Catalog, load_catalog
from kit import HandlerSet
from tests.chart.rendering import Document, by_name, chart_values, of_kind, render
from tests.conftest import REPO_ROOT

SERVICES: dict[str, Any] = chart_values()["services"]
DEAD_LETTER_SERVICE = chart_values()["broker"]["delivery"]["deadLetterService"]
EVENT_TYPE = re.compile(r"\b[a-z]+\.[a-z]+\b")


@pytest.fixture(scope="module")
def docs(helm4: str) -> list[Document]:
    return render(helm4)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def handler_set(name: str) -> HandlerSet:
    """The service's registered handlers; fails (rather than skips) while it has none."""
    try:
        module = importlib.import_module(f"services.{name}.handlers")
    except ModuleNotFoundError as error:
        pytest.fail(f"services.{name}.handlers cannot be imported ({error}): the chart runs it")
    handlers = getattr(module, "handlers", None)
    assert isinstance(handlers, HandlerSet), f"services.{name}.handlers.handlers is no HandlerSet"
    return handlers


def trigger_types(trigger: Document) -> set[str] | None:
    """The types a Trigger lets through, or None for a Trigger without a filter."""
    spec = trigger["spec"]
    if spec.get("filters"):
        return {entry["exact"]["type"] for entry in spec["filters"]}
    attributes = (spec.get("filter") or {}).get("attributes")
    return {attributes["type"]} if attributes else None


def triggers_of(docs: list[Document], name: str) -> list[Document]:
    return [t for t in of_kind(docs, "Trigger") if t["spec"]["subscriber"]["ref"]["name"] == name]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_handler_has_a_trigger_and_every_trigger_a_handler(
    docs: list[Document], name: str
) -> None:
    handlers = handler_set(name)
    triggers = triggers_of(docs, name)
    filtered = [trigger_types(t) for t in triggers]
    routed = set().union(*(types for types in filtered if types is not None))
    assert routed == set(handlers.by_type), (
        f"{name}: Triggers deliver {sorted(routed)}, handlers exist for {sorted(handlers.by_type)}"
    )
    if None in filtered or name == DEAD_LETTER_SERVICE:
        # It receives events of any type (every event, or any event that failed delivery).
        assert handlers.fallback is not None, f"{name} receives any type but has no on_any()"


def test_the_chart_produces_what_the_catalog_says(catalog: Catalog) -> None:
    chart = {name: sorted(service["produces"]) for name, service in SERVICES.items()}
    code = {name: catalog.produced_by(name) for name in SERVICES}
    assert chart == code
    assert set(catalog.producers().values()) <= set(SERVICES)


def test_every_produced_type_has_an_event_type_with_its_schema(
    docs: list[Document], catalog: Catalog
) -> None:
    event_types = by_name(of_kind(docs, "EventType"))
    assert set(event_types) == set(catalog.names())
    for entry in catalog:
        spec = event_types[entry.type]["spec"]
        attributes = {item["name"]: item.get("value") for item in spec["attributes"]}
        assert attributes["source"] == f"/shop/{entry.producer}", entry.type
        assert attributes["dataschema"] == entry.schema_uri, entry.type
        assert " ".join(spec["description"].split()) == " ".join(entry.description.split()), (
            f"eventTypes.descriptions[{entry.type}] in charts/shop/values.yaml differs from "
            f"its schema's description: {entry.description!r}"
        )


def test_every_consumed_type_is_in_the_catalog(catalog: Catalog) -> None:
    for name, service in SERVICES.items():
        unknown = set(service["subscribes"]) - set(catalog.names())
        assert not unknown, f"{name} subscribes to types outside the catalog: {sorted(unknown)}"


def test_only_the_all_events_trigger_lacks_a_filter_and_its_subscriber_never_replies(
    docs: list[Document],
) -> None:
    unfiltered = [t for t in of_kind(docs, "Trigger") if trigger_types(t) is None]
    subscribers = [t["spec"]["subscriber"]["ref"]["name"] for t in unfiltered]
    assert subscribers == [name for name, service in SERVICES.items() if service["allEvents"]]
    assert subscribers == ["viewer"]
    for name in subscribers:
        # A subscriber behind an unfiltered Trigger that replied would receive its own replies.
        assert SERVICES[name]["produces"] == [], name


def test_no_service_consumes_a_type_it_produces(docs: list[Document]) -> None:
    for name, service in SERVICES.items():
        consumed = set().union(*(trigger_types(t) or set() for t in triggers_of(docs, name)))
        assert not consumed & set(service["produces"]), name


def contract_table() -> dict[str, tuple[str, str]]:
    """docs/design.md's contract: service -> (consumes cell, produces cell)."""
    text = (REPO_ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## The system's contract", 1)[1]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] and not set(cells[0]) <= {"-"} and cells[0] != "service":
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_the_chart_matches_the_contract_in_design_md() -> None:
    table = contract_table()
    assert set(table) == set(SERVICES)
    for name, (consumes, produces) in table.items():
        service = SERVICES[name]
        assert service["subscribes"] == EVENT_TYPE.findall(consumes), name
        assert service["produces"] == EVENT_TYPE.findall(produces), name
        assert service["allEvents"] == consumes.startswith("every event"), name
        if "dead-letter sink" in consumes:
            assert name == DEAD_LETTER_SERVICE


def test_the_viewer_gets_the_topology_of_the_triggers_it_can_read(docs: list[Document]) -> None:
    from wire.topology import parse_topology_text

    observers = [name for name, service in SERVICES.items() if service["observer"]]
    assert observers == ["viewer"]
    ksvc = by_name(of_kind(docs, "Service", "serving.knative.dev"))["viewer"]
    env = {
        e["name"]: e.get("value") for e in ksvc["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    topology = parse_topology_text(env["TOPOLOGY"])
    assert {route.name for route in topology.triggers} == set(by_name(of_kind(docs, "Trigger")))
    assert [broker.dead_letter_sink for broker in topology.brokers] == [DEAD_LETTER_SERVICE]
    assert env["DEADLETTER_URL"] == f"http://{DEAD_LETTER_SERVICE}.shop.svc.cluster.local"
