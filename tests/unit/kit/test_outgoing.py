"""Events a service sends: what the kit adds to what a handler asked for."""

from __future__ import annotations

from kit import NewEvent
from kit.outgoing import build_event
from kit.schemas import EMPTY_REGISTRY

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def built(new: NewEvent, *, partition_by_subject: bool) -> dict[str, object]:
    event = build_event(
        new,
        source="/shop/test",
        schemas=EMPTY_REGISTRY,
        traceparent=TRACEPARENT,
        partition_by_subject=partition_by_subject,
    )
    return dict(event.attributes)


def test_a_service_partitioned_by_subject_sends_its_subject_as_partitionkey() -> None:
    attributes = built(NewEvent("t", {}, subject="o-1"), partition_by_subject=True)
    assert attributes["subject"] == attributes["partitionkey"] == "o-1"


def test_other_services_and_events_without_a_subject_carry_no_partitionkey() -> None:
    assert "partitionkey" not in built(NewEvent("t", {}, subject="o-1"), partition_by_subject=False)
    assert "partitionkey" not in built(NewEvent("t", {}), partition_by_subject=True)


def test_a_partitionkey_the_handler_sets_wins_over_the_subject() -> None:
    new = NewEvent("t", {}, subject="o-1", extensions={"partitionkey": "other"})
    assert built(new, partition_by_subject=True)["partitionkey"] == "other"
