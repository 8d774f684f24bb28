"""EventPolicies (eventing.knative.dev/v1alpha1): who may send events to which resources.

Admission follows the eventing webhook (`pkg/apis/eventing/v1alpha1/eventpolicy_validation.go`
and `_defaults.go`); which policies apply to a resource and who a `from.ref` names follow
`pkg/auth/event_policy.go`. Knative quirks kept on purpose:
- a policy with no `to` applies to every resource of its namespace;
- a `to.selector` with neither `matchLabels` nor `matchExpressions` selects nothing (a nil label
  selector is `labels.Nothing()`), one with an empty `matchLabels: {}` selects everything;
- a policy with no `from` applies and allows nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shop.manifests.eventing import filter_error_location
from shop.manifests.fields import Fields
from shop.manifests.objects import ManifestObject, Metadata
from shop.manifests.sources import LabelRequirement, read_requirement
from wire.knative import KReference
from wire.knative.filters import FilterError, compile_filters
from wire.oidc.subjects import resource_subject, sink_binding_subject, trigger_subject

TRIGGER_KIND = ("eventing.knative.dev", "Trigger")
SINK_BINDING_KIND = ("sources.knative.dev", "SinkBinding")
_SPEC_FIELDS = ("to", "from", "filters")
_TO_FIELDS = ("ref", "selector")
_FROM_FIELDS = ("ref", "sub")
_TO_REF_FIELDS = ("apiVersion", "kind", "name")
_FROM_REF_FIELDS = ("apiVersion", "kind", "name", "namespace")
_SELECTOR_FIELDS = ("apiVersion", "kind", "matchLabels", "matchExpressions")


def group_of(api_version: str) -> str:
    """The API group of `group/version` (`schema.ParseGroupVersion`; a bare `v1` is core)."""
    group, _, _ = api_version.rpartition("/")
    return group


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector: every `matchLabels` pair and every expression must hold."""

    match_labels: Mapping[str, str]
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items()) and all(
            requirement.holds(labels) for requirement in self.match_expressions
        )


@dataclass(frozen=True)
class PolicyTarget:
    """One `spec.to` entry: a resource by `ref` (name) or by `selector` (labels).

    `selector` None with no name is a selector that names no labels at all: it selects nothing.
    """

    api_version: str
    kind: str
    name: str | None = None
    selector: LabelSelector | None = None

    def selects(self, api_version: str, kind: str, name: str, labels: Mapping[str, str]) -> bool:
        """Knative's match: group and kind (case-insensitive), then the name or the labels."""
        if group_of(self.api_version).lower() != group_of(api_version).lower():
            return False
        if self.kind.lower() != kind.lower():
            return False
        if self.name is not None:
            return self.name.lower() == name.lower()
        return self.selector is not None and self.selector.matches(labels)


@dataclass(frozen=True)
class PolicySource:
    """One `spec.from` entry: a sender by `ref` (its namespace defaulted) or a `sub` pattern."""

    ref: KReference | None = None
    sub: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventPolicy(ManifestObject):
    """An `eventing.knative.dev/v1alpha1` EventPolicy; `filters` as the manifest states them."""

    to: tuple[PolicyTarget, ...] = ()
    sources: tuple[PolicySource, ...] = ()
    filters: tuple[Mapping[str, object], ...] = ()

    def applies_to(self, api_version: str, obj: ManifestObject) -> bool:
        """Whether the policy protects `obj` (GetEventPoliciesForResource)."""
        if obj.namespace != self.namespace:
            return False
        return not self.to or any(
            target.selects(api_version, obj.kind, obj.name, obj.labels) for target in self.to
        )


def sender_subject(ref: KReference) -> str:
    """The subject a `from.ref` stands for: the OIDC identity Knative gives that resource."""
    assert ref.namespace is not None  # defaulted to the policy's namespace at admission
    kind = (group_of(ref.api_version), ref.kind)
    if kind == TRIGGER_KIND:
        return trigger_subject(ref.namespace, ref.name)
    if kind == SINK_BINDING_KIND:
        return sink_binding_subject(ref.namespace, ref.name)
    return resource_subject(ref.namespace, kind[0], ref.kind, ref.name)


def read_event_policy(meta: Metadata) -> EventPolicy:
    """Admit an EventPolicy: `to`, `from` (refs defaulted to its namespace) and `filters`."""
    spec = meta.root.mapping("spec")
    _only(spec, _SPEC_FIELDS)
    filters = spec.items("filters")
    if filters:
        try:
            compile_filters([item.values for item in filters], spec.path_of("filters"))
        except FilterError as error:
            path, message = filter_error_location(error)
            raise spec.context.error(path, message) from None
    return EventPolicy(
        **meta.common(),
        to=tuple(_target(item) for item in spec.items("to")),
        sources=tuple(_source(item, meta.namespace) for item in spec.items("from")),
        filters=tuple(item.values for item in filters),
    )


def _target(item: Fields) -> PolicyTarget:
    _only(item, _TO_FIELDS)
    if item.has("ref") == item.has("selector"):
        raise item.error(None, "expected exactly one of ref and selector")
    if item.has("ref"):
        ref = item.mapping("ref")
        _only(ref, _TO_REF_FIELDS)
        return PolicyTarget(
            api_version=_api_version(ref),
            kind=ref.required_text("kind"),
            name=ref.required_text("name"),
        )
    selector = item.mapping("selector")
    _only(selector, _SELECTOR_FIELDS)
    label_selector = None
    if "matchLabels" in selector.values or "matchExpressions" in selector.values:
        label_selector = LabelSelector(
            selector.text_map("matchLabels"),
            tuple(read_requirement(entry) for entry in selector.items("matchExpressions")),
        )
    return PolicyTarget(
        api_version=_api_version(selector),
        kind=selector.required_text("kind"),
        selector=label_selector,
    )


def _source(item: Fields, namespace: str) -> PolicySource:
    _only(item, _FROM_FIELDS)
    if item.has("ref") and item.has("sub"):
        raise item.error(None, "expected exactly one of ref and sub, got both")
    if item.has("ref"):
        ref = item.mapping("ref")
        _only(ref, _FROM_REF_FIELDS)
        return PolicySource(
            ref=KReference(
                api_version=_api_version(ref),
                kind=ref.required_text("kind"),
                name=ref.required_text("name"),
                namespace=ref.text("namespace") or namespace,
            )
        )
    sub = item.text("sub")
    if not sub:
        raise item.error(None, "expected exactly one of ref and sub, got neither")
    if "*" in sub[:-1]:
        raise item.error("sub", f"{sub!r}: '*' is only allowed as the last character")
    return PolicySource(sub=sub)


def _api_version(fields: Fields) -> str:
    api_version = fields.required_text("apiVersion")
    if api_version.count("/") > 1:
        raise fields.error("apiVersion", f"{api_version!r} is not <group>/<version>")
    return api_version


def _only(fields: Fields, known: tuple[str, ...]) -> None:
    """Refuse unknown fields, as the API server does (the CRD allows no others): a misspelt
    `form:` would otherwise mean a policy that allows nobody."""
    for key in fields.values:
        if key not in known:
            raise fields.error(key, f"unknown field (known: {', '.join(known)})")
