"""The table `shop up` prints once everything answers: what runs where and what reaches it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shop.manifests import Topology, Trigger
from shop.runner.addresses import LocalAddresses
from wire.knative.filters.description import describe_filter

_HEADER = ("SERVICE", "URL", "TRIGGER", "FILTER")
_NONE = "-"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    service: str
    url: str
    trigger: str = _NONE
    filter: str = ""


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
                    Row(label, url, _trigger_label(trigger), describe_filter(trigger.spec))
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
                _NONE,
                target or "(not resolved)",
                _trigger_label(trigger),
                describe_filter(trigger.spec),
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
