"""Broker, Trigger and EventType (eventing.knative.dev), admitted as Knative's webhook would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shop.manifests.fields import Fields
from shop.manifests.objects import ManifestObject, Metadata
from wire.knative import DeliverySpec, Destination, KReference
from wire.knative.filters import FilterError, compile_trigger_filter

BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
# The class config-br-defaults gives a Broker that does not name one.
DEFAULT_BROKER_CLASS = "MTChannelBasedBroker"
# EventTypeSpec.ValidateAttributes (v1beta3): the attributes every EventType must describe.
REQUIRED_EVENT_TYPE_ATTRIBUTES = ("type", "source", "specversion", "id")


@dataclass(frozen=True, kw_only=True)
class Broker(ManifestObject):
    """An `eventing.knative.dev/v1` Broker."""

    broker_class: str = DEFAULT_BROKER_CLASS
    config: Mapping[str, object] | None = None
    delivery: DeliverySpec | None = None


@dataclass(frozen=True, kw_only=True)
class Trigger(ManifestObject):
    """An `eventing.knative.dev/v1` Trigger; `spec` is kept whole for the filter compiler."""

    broker: str
    subscriber: Destination
    filter: Mapping[str, object] | None = None
    filters: tuple[Mapping[str, object], ...] | None = None
    delivery: DeliverySpec | None = None
    spec: Mapping[str, object]


@dataclass(frozen=True)
class EventAttribute:
    """One attribute definition of a v1beta3 EventType."""

    name: str
    required: bool = False
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventType(ManifestObject):
    """An EventType (v1beta3 and v1 with `attributes`, v1beta2 with `type`/`source`/`schema`)."""

    api_version: str
    type: str | None = None
    source: str | None = None
    schema: str | None = None
    description: str | None = None
    reference: KReference | None = None
    attributes: tuple[EventAttribute, ...] = ()


def read_broker(meta: Metadata) -> Broker:
    """Admit a Broker: its class annotation, `spec.config` and `spec.delivery`."""
    spec = meta.root.mapping("spec")
    config = spec.raw("config")
    if config is not None and not isinstance(config, Mapping):
        raise spec.error("config", "expected an object (a reference to the broker's config)")
    return Broker(
        **meta.common(),
        broker_class=meta.annotations.get(BROKER_CLASS_ANNOTATION) or DEFAULT_BROKER_CLASS,
        config=config,
        delivery=_delivery(spec),
    )


def read_trigger(meta: Metadata) -> Trigger:
    """Admit a Trigger: broker, subscriber, filters and delivery (TriggerSpec.Validate)."""
    spec = meta.root.mapping("spec")
    broker = spec.required_text("broker")
    if not spec.has("subscriber"):
        raise spec.error("subscriber", "required (a ref and/or a uri)")
    subscriber = spec.via_knative(
        lambda: Destination.from_manifest(spec.raw("subscriber"), spec.path_of("subscriber"))
    )
    raw_filter = spec.raw("filter")
    if raw_filter is not None and not isinstance(raw_filter, Mapping):
        raise spec.error("filter", "expected an object with `attributes`")
    filters = spec.items("filters") if spec.has("filters") else None
    if raw_filter is not None or filters is not None:
        _admit_filters(spec)
    return Trigger(
        **meta.common(),
        broker=broker,
        subscriber=subscriber,
        filter=raw_filter,
        filters=None if filters is None else tuple(item.values for item in filters),
        delivery=_delivery(spec),
        spec=spec.values,
    )


def read_event_type(meta: Metadata) -> EventType:
    """Admit an EventType; v1beta3 and v1 must describe type, source, specversion and id."""
    spec = meta.root.mapping("spec")
    reference = None
    if spec.has("reference"):
        reference = spec.via_knative(
            lambda: KReference.from_manifest(spec.raw("reference"), spec.path_of("reference"))
        )
    api_version = meta.api_version
    if api_version.endswith("/v1beta2"):
        return EventType(
            **meta.common(),
            api_version=api_version,
            type=spec.text("type"),
            source=spec.text("source"),
            schema=spec.text("schema"),
            description=spec.text("description"),
            reference=reference,
        )
    attributes = tuple(
        EventAttribute(
            name=item.required_text("name"),
            required=bool(item.flag("required")),
            value=item.text("value"),
        )
        for item in spec.items("attributes")
    )
    named = {attribute.name: attribute for attribute in attributes}
    missing = [name for name in REQUIRED_EVENT_TYPE_ATTRIBUTES if name not in named]
    if missing:
        raise spec.error("attributes", f"missing definitions of: {', '.join(missing)}")
    return EventType(
        **meta.common(),
        api_version=api_version,
        type=named["type"].value,
        source=named["source"].value,
        schema=named["dataschema"].value if "dataschema" in named else None,
        description=spec.text("description"),
        reference=reference,
        attributes=attributes,
    )


def _delivery(spec: Fields) -> DeliverySpec | None:
    if not spec.has("delivery"):
        return None
    return spec.via_knative(
        lambda: DeliverySpec.from_manifest(spec.raw("delivery"), spec.path_of("delivery"))
    )


def _admit_filters(spec: Fields) -> None:
    """Compile `filter` / `filters` as the broker will; a FilterError stops admission."""
    try:
        compile_trigger_filter(spec.values)
    except FilterError as error:
        path, message = filter_error_location(error)
        raise spec.context.error(path, message) from None


def filter_error_location(error: ValueError) -> tuple[str, str]:
    """The full field path and the bare message of a FilterError (its path is within spec)."""
    raw_path = getattr(error, "path", None)
    inner = str(raw_path) if raw_path else ""
    if inner == "spec" or inner.startswith(("spec.", "spec[")):
        path = inner
    elif inner:
        path = f"spec{inner}" if inner.startswith("[") else f"spec.{inner}"
    else:
        path = "spec"
    message = getattr(error, "message", None)
    if not isinstance(message, str) or not message:
        message = str(error)
    for prefix in (f"{inner}: ", f"{path}: "):
        if inner and message.startswith(prefix):
            message = message[len(prefix) :]
    return path, message
