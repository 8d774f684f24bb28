"""Test manifests: a broker whose triggers give up at once, the deadletter service, a flaky sink.

Shared by the deadletter integration tests and the browser tests: `observed_topology()` adds
the flaky sink and its two triggers (one with a relative URI, so the two fail at different
URLs) to any list of objects, e.g. the chart's rendered manifests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.shop_up import REPO_ROOT, ShopUp

KSVC_API = "serving.knative.dev/v1"
EVENTING_API = "eventing.knative.dev/v1"
FLAKY_TYPE = "test.flaky"
GUNICORN = ["gunicorn"]


def gunicorn_service(name: str, app: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A Knative Service running a WSGI app the way every service of the chart runs."""
    container: dict[str, Any] = {
        "image": f"dev.local/{name}",
        "command": GUNICORN,
        "args": ["-c", "python:kit.gunicorn_conf", app],
        "ports": [{"name": "http1", "containerPort": 8080}],
    }
    if env:
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    return {
        "apiVersion": KSVC_API,
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def flaky_objects(retry: int = 0) -> list[dict[str, Any]]:
    """The flaky sink and two triggers on `test.flaky` that retry `retry` times, then give up."""
    ref = {"apiVersion": KSVC_API, "kind": "Service", "name": "flaky"}
    delivery = {"retry": retry, "backoffPolicy": "linear", "backoffDelay": "PT0.1S"}
    triggers = [
        ("flaky-a", {"ref": ref}),
        ("flaky-b", {"ref": ref, "uri": "/b"}),
    ]
    return [
        gunicorn_service("flaky", "tests.integration.deadletter.flaky_sink:create_app()"),
        *(
            {
                "apiVersion": EVENTING_API,
                "kind": "Trigger",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {
                    "broker": "default",
                    "filters": [{"exact": {"type": FLAKY_TYPE}}],
                    "subscriber": subscriber,
                    "delivery": delivery,
                },
            }
            for name, subscriber in triggers
        ),
    ]


def minimal_topology() -> list[dict[str, Any]]:
    """A broker dead-lettering to the deadletter service (with K_SINK back to the broker)."""
    deadletter_ref = {"apiVersion": KSVC_API, "kind": "Service", "name": "deadletter"}
    return [
        {
            "apiVersion": EVENTING_API,
            "kind": "Broker",
            "metadata": {"name": "default", "namespace": "shop"},
            "spec": {"delivery": {"retry": 0, "deadLetterSink": {"ref": deadletter_ref}}},
        },
        gunicorn_service(
            "deadletter",
            "services.deadletter.app:create_app()",
            # As the chart sets them; `shop up` replaces both (the local profile).
            {
                "DATABASE_URL": "postgresql://cluster-only/deadletter",
                "REDELIVER_DEFAULT_TO": "broker",
            },
        ),
        {
            "apiVersion": "sources.knative.dev/v1",
            "kind": "SinkBinding",
            "metadata": {"name": "deadletter-broker", "namespace": "shop"},
            "spec": {
                "subject": {"apiVersion": KSVC_API, "kind": "Service", "name": "deadletter"},
                "sink": {"ref": {"apiVersion": EVENTING_API, "kind": "Broker", "name": "default"}},
            },
        },
        *flaky_objects(),
    ]


def chart_with_flaky_sink(directory: Path) -> Path:
    """The chart's rendered manifests/ plus the flaky sink and its triggers, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO_ROOT / "manifests").glob("*.yaml")):
        shutil.copy(source, directory / source.name)
    (directory / "99-flaky-sink.yaml").write_text(yaml.safe_dump_all(flaky_objects()))
    return directory


def observed_shop(root: Path) -> ShopUp:
    """`shop up` of the whole chart plus the flaky sink (not started yet).

    The viewer's DEADLETTER_URL names the deadletter ksvc's cluster address, which `shop up`
    turns into the local one, as it does for every cluster URL a manifest holds.
    """
    return ShopUp(chart_with_flaky_sink(root / "manifests"), root / "state")
