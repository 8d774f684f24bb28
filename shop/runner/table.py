"""The table `shop up` prints once everything answers: what runs where and what reaches it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shop.manifests import Topology, Trigger
from shop.runner.addresses import LocalAddresses

_HEADER = ("SERVICE", "URL", "TRIGGER", "FILTER")
_NONE = "-"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    service: str
    url: str
    trigger: str = _NONE
    filter: str = ""


def describe_filter(trigger: Trigger) -> str:
    """A Trigger's filter in one short line: `type = order.created`, `all events`, ...

    As Knative does, a non-empty `filters` wins over the legacy `filter.attributes`.
    """
    if trigger.filters:
        return " and ".join(
            _dialect(entry, nested=len(trigger.filters) > 1) for entry in trigger.filters
        )
    attributes = (trigger.filter or {}).get("attributes")
    if isinstance(attributes, Mapping) and attributes:
        return " and ".join(
            f"{name} = {value if value else '*'}" for name, value in attributes.items()
        )
    return "all events"


def rows(
    topology: Topology,
    addresses: LocalAddresses,
    names: Mapping[tuple[str, str], str],
    smtp_url: str,
    maildir: str,
) -> list[Row]:
    """The table's rows: brokers, the SMTP server, then each service with its triggers."""
    table = [
        Row(
            f"broker {broker.namespace}/{broker.name}",
            addresses.broker_url(broker.namespace, broker.name),
            _count(len(topology.triggers_of(broker)), "trigger"),
        )
        for broker in topology.brokers
    ]
    table.append(Row("smtp", smtp_url, _NONE, f"mail kept in {maildir}"))
    routed: set[tuple[str, str]] = set()
    for service in topology.services:
        url = addresses.url_of(service)
        label = names[(service.namespace, service.name)]
        service_rows = []
        for trigger in topology.triggers:
            if topology.subscriber_service(trigger) is service:
                routed.add((trigger.namespace, trigger.name))
                service_rows.append(
                    Row(label, url, _trigger_label(trigger), describe_filter(trigger))
                )
        dead_letters = [
            trigger
            for trigger in topology.triggers
            if (sink := topology.delivery_of(trigger).dead_letter_sink) is not None
            and topology.destination_service(sink, trigger.namespace) is service
        ]
        if dead_letters:
            service_rows.append(
                Row(
                    label,
                    url,
                    "(dead letters)",
                    f"failed events of {_count(len(dead_letters), 'trigger')}",
                )
            )
        table.extend(service_rows or [Row(label, url)])
    for trigger in topology.triggers:
        if (trigger.namespace, trigger.name) in routed:
            continue
        target = addresses.resolve(topology, trigger.subscriber, trigger.namespace)
        table.append(
            Row(
                _NONE, target or "(not resolved)", _trigger_label(trigger), describe_filter(trigger)
            )
        )
    return table


def render(table: Sequence[Row]) -> list[str]:
    """The rows as aligned text lines, a header first; a service's repeated cells are blanked."""
    cells = [_HEADER]
    previous: tuple[str, str] | None = None
    for row in table:
        same = previous == (row.service, row.url)
        cells.append(
            ("" if same else row.service, "" if same else row.url, row.trigger, row.filter)
        )
        previous = (row.service, row.url)
    widths = [max(len(line[column]) for line in cells) for column in range(len(_HEADER) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)), line[-1]]
        ).rstrip()
        for line in cells
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _trigger_label(trigger: Trigger) -> str:
    path = trigger.subscriber.uri if trigger.subscriber.ref is not None else None
    return f"{trigger.name} ({path})" if path else trigger.name


def _dialect(entry: Mapping[str, object], *, nested: bool) -> str:
    """One `filters` entry (exactly one dialect, as admission checked)."""
    for dialect, value in entry.items():
        text = _dialect_text(dialect, value)
        combined = dialect in ("all", "any") or (dialect == "exact" and _many(value))
        return f"({text})" if nested and combined else text
    return "all events"


def _dialect_text(dialect: str, value: object) -> str:
    if dialect in ("exact", "prefix", "suffix") and isinstance(value, Mapping):
        shape = {"exact": "{}", "prefix": "{}*", "suffix": "*{}"}[dialect]
        return " and ".join(f"{name} = {shape.format(text)}" for name, text in value.items())
    if dialect in ("all", "any") and isinstance(value, list):
        joiner = " and " if dialect == "all" else " or "
        return joiner.join(
            _dialect(item, nested=len(value) > 1) for item in value if isinstance(item, Mapping)
        )
    if dialect == "not" and isinstance(value, Mapping):
        return f"not ({_dialect(value, nested=False)})"
    if dialect == "cesql":
        return f"cesql {value!r}" if isinstance(value, str) else "cesql"
    return f"{dialect} {value!r}"


def _many(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 1
