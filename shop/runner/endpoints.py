"""`<state-dir>/run/endpoints.json`: where everything `shop up` runs is reached.

One flat JSON object of strings, so that `jq -r .order` works and the broker reads it as its
`--endpoints` map (it resolves a Trigger's ksvc ref by `namespace/name`, then by name):

    "broker"               the first Broker's ingress (http://127.0.0.1:8080/shop/default)
    "broker/<ns>/<name>"   every Broker's ingress
    "<service>"            each Knative Service's base URL (the first one, where names repeat)
    "<ns>/<service>"       each Knative Service's base URL
    "smtp"                 the local SMTP server (smtp://127.0.0.1:<port>)
    "maildir"              the Maildir it delivers to
    "oidc"                 the local OIDC issuer, when sender identity is on
    "otlp"                 the broker's OTLP/HTTP trace receiver (http://127.0.0.1:8080/v1/traces),
                           when tracing is on
    "pid"                  the pid of the `shop up` that wrote it: the CLI tells a live run
                           from one that ended by it (shop.inspect.endpoints.local_shop)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from shop.manifests import Topology
from shop.runner.addresses import LocalAddresses

# Bare keys the runner itself uses; a Knative Service with one of these names is reachable
# under its `namespace/name` key only.
PID_KEY = "pid"
RESERVED_KEYS = frozenset({"broker", "smtp", "maildir", "oidc", "otlp", PID_KEY})


def endpoints_document(
    topology: Topology,
    addresses: LocalAddresses,
    smtp_url: str,
    maildir: Path,
    *,
    pid: int,
    issuer: str | None = None,
    otlp: str | None = None,
) -> dict[str, str]:
    """The endpoints.json content for a topology whose processes are at `addresses`.

    `pid` is that of the `shop up` running them; `otlp` the trace receiver's URL, if any.
    """
    document: dict[str, str] = {}
    for broker in topology.brokers:
        url = addresses.broker_url(broker.namespace, broker.name)
        document.setdefault("broker", url)
        document[f"broker/{broker.namespace}/{broker.name}"] = url
    for service in topology.services:
        url = addresses.url_of(service)
        if service.name not in RESERVED_KEYS:
            document.setdefault(service.name, url)
        document[f"{service.namespace}/{service.name}"] = url
    document["smtp"] = smtp_url
    document["maildir"] = str(maildir)
    if issuer is not None:
        document["oidc"] = issuer
    if otlp is not None:
        document["otlp"] = otlp
    document[PID_KEY] = str(pid)
    return document


def shadowed_services(topology: Topology) -> list[str]:
    """Services whose bare name is taken (by a reserved key or an earlier namespace)."""
    seen: set[str] = set()
    shadowed: list[str] = []
    for service in topology.services:
        if service.name in RESERVED_KEYS or service.name in seen:
            shadowed.append(f"{service.namespace}/{service.name}")
        seen.add(service.name)
    return shadowed


def write_json(path: Path, document: Mapping[str, object]) -> None:
    """Write `document` so that a reader never sees half a file (write aside, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
