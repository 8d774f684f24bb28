"""`shop status` against a cluster: Knative objects read with the kubernetes client.

The deadletter service is cluster-local, so its counts come through the API server's service
proxy to the running revision (`<revision>-private`), or from `--deadletter-url` when given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import requests
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from shop.inspect.status import (
    BrokerStatus,
    DeadLetterCounts,
    EventTypeStatus,
    Readiness,
    ServiceStatus,
    StatusReport,
    TriggerStatus,
    counts_from_summary,
)
from wire.knative import Destination, FieldError
from wire.knative.filters.description import describe_filter
from wire.topology import destination_name

EVENTING = "eventing.knative.dev"
SERVING = "serving.knative.dev"
BROKER_CLASS = "eventing.knative.dev/broker.class"
DEADLETTER_SERVICE = "deadletter"
SUMMARY_PATH = "deadletters/summary"
TIMEOUT_SECONDS = 10


class ClusterUnavailable(Exception):
    """No kubeconfig, no such context, or the API server cannot be reached."""


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster and namespace to ask."""

    namespace: str
    context: str | None = None
    kubeconfig: str | None = None
    deadletter_url: str | None = None


def cluster_status(target: ClusterTarget) -> StatusReport:
    """The report for the Knative objects of `target.namespace`."""
    api = _api_client(target)
    custom = client.CustomObjectsApi(api)
    namespace = target.namespace
    try:
        brokers = _items(custom, EVENTING, "v1", namespace, "brokers")
        ksvcs = _items(custom, SERVING, "v1", namespace, "services")
        triggers = _items(custom, EVENTING, "v1", namespace, "triggers")
    except ApiException as error:
        raise ClusterUnavailable(_api_problem(error)) from None
    except urllib3.exceptions.HTTPError as error:
        raise ClusterUnavailable(f"cannot reach the API server: {error}") from None
    notes: list[str] = []
    event_types = _event_types(custom, namespace, notes)
    dead_letters = _dead_letters(api, target, ksvcs)
    context = target.context or _current_context(target)
    return StatusReport(
        where=f"cluster (context {context}, namespace {namespace})",
        brokers=[_broker(item) for item in brokers],
        services=[_service(item) for item in ksvcs],
        triggers=[_trigger(item) for item in triggers],
        event_types=event_types,
        dead_letters=dead_letters,
        notes=notes,
    )


def _api_client(target: ClusterTarget) -> client.ApiClient:
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig, context=target.context, persist_config=False
        )
    except (ConfigException, OSError, TypeError) as error:
        raise ClusterUnavailable(f"no usable kubeconfig: {error}") from None
    return cast(client.ApiClient, api)


def _current_context(target: ClusterTarget) -> str:
    try:
        _, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig
        )
        return str(current["name"])
    except (ConfigException, OSError, KeyError, TypeError):
        return "?"


def _items(
    custom: client.CustomObjectsApi, group: str, version: str, namespace: str, plural: str
) -> list[dict[str, Any]]:
    listed = cast(
        dict[str, Any],
        custom.list_namespaced_custom_object(
            group, version, namespace, plural, _request_timeout=TIMEOUT_SECONDS
        ),
    )
    items: list[dict[str, Any]] = listed.get("items", [])
    return sorted(items, key=lambda item: item["metadata"]["name"])


def _api_problem(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message")
    except ValueError:
        message = None
    return f"the API server answered {error.status}: {message or error.reason}"


def _broker(item: Mapping[str, Any]) -> BrokerStatus:
    status = item.get("status") or {}
    address = (status.get("address") or {}).get("url")
    annotations = item["metadata"].get("annotations") or {}
    return BrokerStatus(
        name=item["metadata"]["name"],
        address=address,
        readiness=Readiness.from_conditions(status or None),
        broker_class=annotations.get(BROKER_CLASS),
    )


def _service(item: Mapping[str, Any]) -> ServiceStatus:
    status = item.get("status") or {}
    return ServiceStatus(
        name=item["metadata"]["name"],
        url=status.get("url"),
        readiness=Readiness.from_conditions(status or None),
        address=(status.get("address") or {}).get("url"),
    )


def _trigger(item: Mapping[str, Any]) -> TriggerStatus:
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    return TriggerStatus(
        name=item["metadata"]["name"],
        filter=describe_filter(spec),
        subscriber=_subscriber_name(spec.get("subscriber")),
        readiness=Readiness.from_conditions(status or None),
    )


def _subscriber_name(subscriber: Any) -> str:
    """A Trigger's subscriber by name, as the topology document's readers call it; `?` if odd."""
    try:
        return destination_name(Destination.from_manifest(subscriber, "spec.subscriber"))
    except FieldError:
        return "?"


def _event_types(
    custom: client.CustomObjectsApi, namespace: str, notes: list[str]
) -> list[EventTypeStatus]:
    """EventTypes in v1beta3 (attributes), else v1beta2 (spec.type) on older clusters."""
    for version in ("v1beta3", "v1beta2"):
        try:
            items = _items(custom, EVENTING, version, namespace, "eventtypes")
        except ApiException as error:
            if error.status == 404:
                continue
            notes.append(f"EventTypes not read: {_api_problem(error)}")
            return []
        return [_event_type(item, version) for item in items]
    notes.append("the cluster serves no EventType API (eventing.knative.dev v1beta3 or v1beta2)")
    return []


def _event_type(item: Mapping[str, Any], version: str) -> EventTypeStatus:
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    if version == "v1beta3":
        values = {
            attribute.get("name"): attribute.get("value")
            for attribute in spec.get("attributes") or []
        }
        event_type, source = values.get("type"), values.get("source")
    else:
        event_type, source = spec.get("type"), spec.get("source")
    reference = spec.get("reference") or {}
    return EventTypeStatus(
        type=str(event_type or item["metadata"]["name"]),
        source=source,
        broker=reference.get("name"),
        readiness=Readiness.from_conditions(status or None),
    )


def _dead_letters(
    api: client.ApiClient, target: ClusterTarget, ksvcs: list[dict[str, Any]]
) -> DeadLetterCounts:
    if target.deadletter_url:
        return _dead_letters_at(target.deadletter_url)
    service = next((item for item in ksvcs if item["metadata"]["name"] == DEADLETTER_SERVICE), None)
    if service is None:
        return DeadLetterCounts(None, unknown_because="no deadletter Knative Service")
    revision = (service.get("status") or {}).get("latestReadyRevisionName")
    if not revision:
        return DeadLetterCounts(None, unknown_because="deadletter has no ready revision")
    core = client.CoreV1Api(api)
    try:
        # Unparsed: the client would turn a JSON body into the repr of a dict.
        response: Any = core.connect_get_namespaced_service_proxy_with_path(
            f"{revision}-private:http",
            target.namespace,
            SUMMARY_PATH,
            _preload_content=False,
            _request_timeout=TIMEOUT_SECONDS,
        )
        if response.status >= 400:  # older clients return errors unread without preloading
            error = ApiException(status=response.status, reason=response.reason)
            error.body = response.data
            raise error
        summary = json.loads(response.data)
    except ApiException as error:
        hint = "it may be scaled to zero; pass --deadletter-url (e.g. after kubectl port-forward)"
        return DeadLetterCounts(None, unknown_because=f"{_api_problem(error)} ({hint})")
    except (ValueError, urllib3.exceptions.HTTPError) as error:
        return DeadLetterCounts(None, unknown_because=f"cannot ask the deadletter service: {error}")
    return counts_from_summary(summary)


def _dead_letters_at(url: str) -> DeadLetterCounts:
    try:
        response = requests.get(f"{url.rstrip('/')}/{SUMMARY_PATH}", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return counts_from_summary(response.json())
    except (requests.RequestException, ValueError, KeyError) as error:
        return DeadLetterCounts(None, unknown_because=f"{url}: {error}")
