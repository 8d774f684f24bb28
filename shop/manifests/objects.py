"""What every admitted manifest object shares: identity, metadata and where it was read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from shop.manifests.errors import ManifestError
from shop.manifests.fields import Fields, ObjectContext, Origin

DEFAULT_NAMESPACE = "default"
# Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation).
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, kw_only=True)
class ManifestObject:
    """An object read from a manifest: kind, namespace, name, metadata and its origin."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    origin: Origin = field(repr=False, compare=False)

    @property
    def file(self) -> str:
        """The manifest file the object was read from."""
        return self.origin.file

    @property
    def line(self) -> int:
        """The line its YAML document starts on."""
        return self.origin.line

    @property
    def label(self) -> str:
        """`Trigger shop/payment-order-created`, as messages name the object."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def error(self, path: str | None, message: str) -> ManifestError:
        """A ManifestError about the field at `path` of this object."""
        return ManifestError(self.file, self.origin.line_of(path), self.label, path, message)


class CommonFields(TypedDict):
    """The ManifestObject fields, as keyword arguments for a dataclass built from metadata."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    origin: Origin


@dataclass(frozen=True)
class Metadata:
    """The common fields of an object's `metadata`, checked, plus its field reader."""

    api_version: str
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    origin: Origin
    root: Fields

    def common(self) -> CommonFields:
        """Keyword arguments for the ManifestObject fields of a dataclass built from this."""
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "labels": self.labels,
            "annotations": self.annotations,
            "origin": self.origin,
        }


def read_metadata(
    api_version: str,
    kind: str,
    value: Mapping[str, object],
    origin: Origin,
    *,
    dns1035_name: bool = False,
) -> Metadata:
    """Check `metadata` as the API server would and return it with a reader for the object.

    The namespace defaults to `default`, as `kubectl apply` without `-n` does. Names must be
    DNS-1123 subdomains, or DNS-1035 labels (starting with a letter, at most 63 characters)
    for kinds whose name becomes a Kubernetes Service name (`dns1035_name`).
    """
    raw_metadata = value.get("metadata")
    metadata = raw_metadata if isinstance(raw_metadata, Mapping) else {}
    namespace = metadata.get("namespace")
    name = metadata.get("name")
    context = ObjectContext(
        origin,
        kind,
        namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE,
        name if isinstance(name, str) else None,
    )
    root = Fields(context, value, "")
    meta = root.mapping("metadata")
    name = meta.required_text("name")
    namespace = meta.text("namespace") or DEFAULT_NAMESPACE
    if dns1035_name:
        rule, limit, rule_name = _DNS1035_LABEL, 63, "a DNS-1035 label"
    else:
        rule, limit, rule_name = _DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain"
    if not rule.fullmatch(name) or len(name) > limit:
        raise meta.error(
            "name", f"{name!r} must be {rule_name} (lower-case letters, digits and '-')"
        )
    if not _DNS1123_LABEL.fullmatch(namespace):
        raise meta.error("namespace", f"{namespace!r} must be a DNS-1123 label")
    return Metadata(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=namespace,
        labels=meta.text_map("labels"),
        annotations=meta.text_map("annotations"),
        origin=origin,
        root=root,
    )
