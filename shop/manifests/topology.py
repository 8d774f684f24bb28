"""The Knative objects of a manifest folder, admitted, and the questions the runner asks of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from shop.manifests.core import ConfigMap, Secret, read_config_map, read_secret
from shop.manifests.environment import resolve_env
from shop.manifests.errors import ManifestError
from shop.manifests.eventing import (
    Broker,
    EventType,
    Trigger,
    read_broker,
    read_event_type,
    read_trigger,
)
from shop.manifests.features import Features, read_features
from shop.manifests.fields import describe
from shop.manifests.objects import ManifestObject, Metadata, read_metadata
from shop.manifests.policies import (
    SINK_BINDING_KIND,
    TRIGGER_KIND,
    EventPolicy,
    group_of,
    read_event_policy,
    sender_subject,
)
from shop.manifests.rabbitmq import RabbitmqBrokerConfig, read_rabbitmq_broker_config
from shop.manifests.reading import Document, manifest_files, read_documents
from shop.manifests.serving import Service, read_service
from shop.manifests.sources import SinkBinding, read_sink_binding
from wire.knative import DeliverySpec, Destination, KReference, effective_delivery

T = TypeVar("T", bound=ManifestObject)

KSVC_API_VERSION = "serving.knative.dev/v1"
BROKER_API_VERSION = "eventing.knative.dev/v1"


@dataclass(frozen=True)
class Ignored:
    """An object of a kind `shop up` does not run, listed once so the user knows."""

    api_version: str
    kind: str
    name: str | None
    file: str
    line: int


@dataclass(frozen=True)
class NotReady:
    """A condition Knative reports at run time rather than at admission (e.g. no subscriber)."""

    kind: str
    namespace: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class Topology:
    """Every admitted object of a manifest folder, in file order."""

    brokers: tuple[Broker, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    services: tuple[Service, ...] = ()
    sink_bindings: tuple[SinkBinding, ...] = ()
    event_types: tuple[EventType, ...] = ()
    config_maps: tuple[ConfigMap, ...] = ()
    secrets: tuple[Secret, ...] = ()
    event_policies: tuple[EventPolicy, ...] = ()
    rabbitmq_broker_configs: tuple[RabbitmqBrokerConfig, ...] = ()
    features: Features = field(default_factory=Features)
    ignored: tuple[Ignored, ...] = ()
    not_ready: tuple[NotReady, ...] = ()

    def broker(self, namespace: str, name: str) -> Broker | None:
        """The Broker of that namespace and name."""
        return _named(self.brokers, namespace, name)

    def service(self, namespace: str, name: str) -> Service | None:
        """The Knative Service of that namespace and name."""
        return _named(self.services, namespace, name)

    def triggers_of(self, broker: Broker) -> tuple[Trigger, ...]:
        """The Triggers on `broker` (same namespace, `spec.broker` naming it)."""
        return tuple(
            trigger
            for trigger in self.triggers
            if trigger.namespace == broker.namespace and trigger.broker == broker.name
        )

    def broker_of(self, trigger: Trigger) -> Broker | None:
        """The Broker a Trigger names, if it exists."""
        return self.broker(trigger.namespace, trigger.broker)

    def delivery_of(self, trigger: Trigger) -> DeliverySpec:
        """The delivery the trigger's events get (trigger's, else broker's, else the default)."""
        broker = self.broker_of(trigger)
        return effective_delivery(trigger.delivery, None if broker is None else broker.delivery)

    def destination_service(self, destination: Destination, namespace: str) -> Service | None:
        """The Knative Service a Destination's ref names (ref namespace, else `namespace`)."""
        ref = destination.ref
        if ref is None or (ref.api_version, ref.kind) != (KSVC_API_VERSION, "Service"):
            return None
        return self.service(ref.namespace or namespace, ref.name)

    def subscriber_service(self, trigger: Trigger) -> Service | None:
        """The Knative Service a Trigger's subscriber ref resolves to, if it is one that exists."""
        return self.destination_service(trigger.subscriber, trigger.namespace)

    def sink_binding_for(self, service: Service) -> SinkBinding | None:
        """The first SinkBinding whose subject (by name or label selector) is this Service."""
        for binding in self.sink_bindings:
            if binding.subject.selects(
                KSVC_API_VERSION, "Service", service.namespace, service.name, service.labels
            ):
                return binding
        return None

    def resolve_env(self, service: Service) -> dict[str, str]:
        """The Service's environment from its manifest, ConfigMap and Secret refs resolved."""
        return resolve_env(
            service,
            {(item.namespace, item.name): item for item in self.config_maps},
            {(item.namespace, item.name): item for item in self.secrets},
        )

    def event_policies_for(self, broker: Broker) -> tuple[EventPolicy, ...]:
        """The ready EventPolicies that apply to `broker`, by name (the Broker's status.policies).

        A policy whose `from` cannot be resolved is not ready, and Knative leaves it out: if no
        other policy applies, the default authorization mode does.
        """
        return tuple(
            sorted(
                (
                    policy
                    for policy in self.event_policies
                    if policy.applies_to(BROKER_API_VERSION, broker)
                    and not _unresolved_senders(self, policy)
                ),
                key=lambda policy: policy.name,
            )
        )

    def senders_of(self, policy: EventPolicy) -> tuple[str, ...]:
        """The subject patterns of a policy's `from`, refs resolved (the policy's status.from)."""
        return tuple(
            sender_subject(source.ref) if source.ref is not None else source.sub or ""
            for source in policy.sources
        )

    def can_resolve(self, destination: Destination, namespace: str) -> bool:
        """Whether `shop up` can deliver to a Destination: a URI, or a ref to a ksvc or Broker."""
        ref = destination.ref
        if ref is None:
            return True
        target = ref.namespace or namespace
        if (ref.api_version, ref.kind) == (BROKER_API_VERSION, "Broker"):
            return self.broker(target, ref.name) is not None
        return self.destination_service(destination, namespace) is not None


# (group, kind) -> served versions, reader. A known kind in another version is refused, as
# `kubectl apply` refuses it ("no matches for kind").
_KINDS: dict[tuple[str, str], tuple[tuple[str, ...], Callable[[Metadata], ManifestObject]]] = {
    ("eventing.knative.dev", "Broker"): (("v1",), read_broker),
    ("eventing.knative.dev", "Trigger"): (("v1",), read_trigger),
    ("eventing.knative.dev", "EventType"): (("v1", "v1beta3", "v1beta2"), read_event_type),
    ("serving.knative.dev", "Service"): (("v1",), read_service),
    ("sources.knative.dev", "SinkBinding"): (("v1",), read_sink_binding),
    ("eventing.knative.dev", "EventPolicy"): (("v1alpha1",), read_event_policy),
    ("eventing.knative.dev", "RabbitmqBrokerConfig"): (("v1alpha1",), read_rabbitmq_broker_config),
    ("", "ConfigMap"): (("v1",), read_config_map),
    ("", "Secret"): (("v1",), read_secret),
}


def load_topology(directory: Path) -> Topology:
    """Read and admit every object under `directory`; the first invalid one raises ManifestError.

    Objects of other kinds are recorded in `ignored`. Problems Knative reports only at run
    time (a Trigger whose broker or subscriber does not exist, an unresolvable sink) are
    recorded in `not_ready` instead of stopping startup.
    """
    admitted: list[ManifestObject] = []
    ignored: list[Ignored] = []
    seen: dict[tuple[str, str, str], ManifestObject] = {}
    for path in manifest_files(directory):
        for document in read_documents(path):
            obj = _admit(document, ignored)
            if obj is None:
                continue
            key = (type(obj).__name__, obj.namespace, obj.name)
            if key in seen:
                first = seen[key]
                raise obj.error(
                    "metadata.name", f"defined twice (first at {first.file}:{first.line})"
                )
            seen[key] = obj
            admitted.append(obj)
    config_maps = _of(admitted, ConfigMap)
    topology = Topology(
        brokers=_of(admitted, Broker),
        triggers=_of(admitted, Trigger),
        services=_of(admitted, Service),
        sink_bindings=_of(admitted, SinkBinding),
        event_types=_of(admitted, EventType),
        config_maps=config_maps,
        secrets=_of(admitted, Secret),
        event_policies=_of(admitted, EventPolicy),
        rabbitmq_broker_configs=_of(admitted, RabbitmqBrokerConfig),
        features=read_features(config_maps),
        ignored=tuple(ignored),
    )
    return replace(topology, not_ready=_not_ready(topology))


def _admit(document: Document, ignored: list[Ignored]) -> ManifestObject | None:
    value = document.value
    origin = document.origin
    if not isinstance(value, Mapping):
        raise ManifestError(
            origin.file, origin.line, None, None, f"expected an object, not {describe(value)}"
        )
    api_version, kind = value.get("apiVersion"), value.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise ManifestError(origin.file, origin.line, None, "apiVersion", "required")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(origin.file, origin.line, None, "kind", "required")
    group, _, version = api_version.rpartition("/")
    if (group, kind) not in _KINDS:
        metadata = value.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        ignored.append(
            Ignored(
                api_version, kind, name if isinstance(name, str) else None, origin.file, origin.line
            )
        )
        return None
    versions, reader = _KINDS[(group, kind)]
    meta = read_metadata(api_version, kind, value, origin, dns1035_name=kind == "Service")
    if version not in versions:
        raise meta.root.error(
            "apiVersion",
            f"{api_version} is not served (use {group + '/' if group else ''}{versions[0]})",
        )
    if document.duplicate_key is not None:
        path, line = document.duplicate_key
        raise ManifestError(origin.file, line, meta.root.context.label, path, "duplicate key")
    return reader(meta)


def _not_ready(topology: Topology) -> tuple[NotReady, ...]:
    found: list[NotReady] = []
    for trigger in topology.triggers:
        if topology.broker_of(trigger) is None:
            message = f"Broker {trigger.namespace}/{trigger.broker} does not exist"
            found.append(_condition(trigger, "BrokerDoesNotExist", message))
        targets = [("SubscriberNotResolved", trigger.subscriber)]
        dead_letter = topology.delivery_of(trigger).dead_letter_sink
        if dead_letter is not None:
            targets.append(("DeadLetterSinkNotResolved", dead_letter))
        for reason, destination in targets:
            problem = _unresolved(topology, destination, trigger.namespace)
            if problem is not None:
                found.append(_condition(trigger, reason, problem))
    for binding in topology.sink_bindings:
        problem = _unresolved(topology, binding.sink, binding.namespace)
        if problem is not None:
            found.append(_condition(binding, "SinkNotResolved", problem))
    for policy in topology.event_policies:
        missing = _unresolved_senders(topology, policy)
        if missing:
            message = f"spec.from: {'; '.join(missing)} (the policy applies to nothing)"
            found.append(_condition(policy, "SubjectsNotResolved", message))
    return tuple(found)


def _unresolved_senders(topology: Topology, policy: EventPolicy) -> list[str]:
    """Why the Triggers and SinkBindings a policy's `from` refers to cannot be resolved.

    Knative reads a ref's identity from the object's status; one that does not exist leaves
    the policy not ready. Other kinds (sources `shop up` does not run) resolve by name alone.
    """
    refs = (source.ref for source in policy.sources if source.ref is not None)
    return [
        f"{ref.kind} {ref.namespace}/{ref.name} does not exist"
        for ref in refs
        if not _exists(topology, ref)
    ]


def _exists(topology: Topology, ref: KReference) -> bool:
    namespace, name = ref.namespace or "", ref.name
    kind = (group_of(ref.api_version), ref.kind)
    if kind == TRIGGER_KIND:
        return _named(topology.triggers, namespace, name) is not None
    if kind == SINK_BINDING_KIND:
        return _named(topology.sink_bindings, namespace, name) is not None
    return True


def _condition(obj: ManifestObject, reason: str, message: str) -> NotReady:
    return NotReady(obj.kind, obj.namespace, obj.name, reason, message)


def _unresolved(topology: Topology, destination: Destination, namespace: str) -> str | None:
    """Why `shop up` cannot deliver to `destination`, or None when it can."""
    ref = destination.ref
    if ref is None or topology.can_resolve(destination, namespace):
        return None
    return (
        f"{ref.kind} {ref.namespace or namespace}/{ref.name} ({ref.api_version}) is not a "
        "Knative Service or Broker defined in the manifests"
    )


def _named(objects: tuple[T, ...], namespace: str, name: str) -> T | None:
    return next((obj for obj in objects if (obj.namespace, obj.name) == (namespace, name)), None)


def _of(objects: list[ManifestObject], cls: type[T]) -> tuple[T, ...]:
    return tuple(obj for obj in objects if isinstance(obj, cls))
