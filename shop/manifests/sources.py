"""SinkBindings (sources.knative.dev/v1): which Service gets which K_SINK and K_CE_OVERRIDES."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shop.manifests.fields import Fields
from shop.manifests.objects import ManifestObject, Metadata
from wire.knative import Destination
from wire.spec import InvalidEvent, check_attribute_name

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class LabelRequirement:
    """One `matchExpressions` entry of a label selector."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this requirement (Kubernetes selector semantics)."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside


@dataclass(frozen=True)
class Subject:
    """The objects a SinkBinding binds: one by name, or all matching a label selector."""

    api_version: str
    kind: str
    namespace: str
    name: str | None = None
    match_labels: Mapping[str, str] | None = None
    match_expressions: tuple[LabelRequirement, ...] = ()

    def selects(
        self, api_version: str, kind: str, namespace: str, name: str, labels: Mapping[str, str]
    ) -> bool:
        """Whether the object so described is a subject of the binding."""
        if (api_version, kind, namespace) != (self.api_version, self.kind, self.namespace):
            return False
        if self.name is not None:
            return name == self.name
        matched = self.match_labels or {}
        return all(labels.get(key) == value for key, value in matched.items()) and all(
            requirement.holds(labels) for requirement in self.match_expressions
        )


@dataclass(frozen=True, kw_only=True)
class SinkBinding(ManifestObject):
    """A SinkBinding: its subject, its sink (unresolved) and its CloudEvent extension overrides."""

    subject: Subject
    sink: Destination
    ce_overrides: Mapping[str, str] = field(default_factory=dict)


def read_sink_binding(meta: Metadata) -> SinkBinding:
    """Admit a SinkBinding: subject by name xor selector, a sink, valid extension names."""
    spec = meta.root.mapping("spec")
    if not spec.has("sink"):
        raise spec.error("sink", "required (a ref and/or a uri)")
    sink = spec.via_knative(
        lambda: Destination.from_manifest(spec.raw("sink"), spec.path_of("sink"))
    )
    overrides = spec.mapping("ceOverrides").text_map("extensions")
    extensions = spec.mapping("ceOverrides").mapping("extensions")
    for name in overrides:
        try:
            check_attribute_name(name)
        except InvalidEvent as error:
            raise extensions.error(name, error.message) from None
    return SinkBinding(
        **meta.common(),
        subject=_subject(spec.mapping("subject"), meta.namespace),
        sink=sink,
        ce_overrides=overrides,
    )


def _subject(subject: Fields, namespace: str) -> Subject:
    api_version = subject.required_text("apiVersion")
    kind = subject.required_text("kind")
    has_name, has_selector = subject.has("name"), subject.has("selector")
    if has_name == has_selector:
        raise subject.error(None, "expected exactly one of name and selector")
    selector = subject.mapping("selector")
    return Subject(
        api_version=api_version,
        kind=kind,
        namespace=subject.text("namespace") or namespace,
        name=subject.required_text("name") if has_name else None,
        match_labels=selector.text_map("matchLabels") if has_selector else None,
        match_expressions=tuple(
            read_requirement(item) for item in selector.items("matchExpressions")
        ),
    )


def read_requirement(item: Fields) -> LabelRequirement:
    """Admit one `matchExpressions` entry of a label selector (LabelSelectorAsSelector's rules)."""
    operator = item.required_text("operator")
    if operator not in _OPERATORS:
        raise item.error("operator", f"{operator!r} is not one of {', '.join(_OPERATORS)}")
    values = item.texts("values")
    if operator in ("In", "NotIn") and not values:
        raise item.error("values", f"required for {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        raise item.error("values", f"must be empty for {operator}")
    return LabelRequirement(key=item.required_text("key"), operator=operator, values=values)
