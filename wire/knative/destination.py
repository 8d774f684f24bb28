"""Knative Destinations (`ref` and/or `uri`) as manifests state them, before any resolution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from wire.knative.errors import FieldError


@dataclass(frozen=True)
class KReference:
    """A reference to an Addressable object (`apiVersion`, `kind`, `name`, optional namespace)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def from_manifest(cls, obj: object, path: str) -> KReference:
        """Read a `ref:` mapping; apiVersion, kind and name are required (KReference.Validate)."""
        fields = _mapping(obj, path)
        missing = [key for key in ("apiVersion", "kind", "name") if not fields.get(key)]
        if missing:
            raise FieldError(f"{path}.{missing[0]}", "required")
        return cls(
            api_version=_string(fields, "apiVersion", path),
            kind=_string(fields, "kind", path),
            name=_string(fields, "name", path),
            namespace=_optional_string(fields, "namespace", path),
        )


@dataclass(frozen=True)
class Destination:
    """Where events go: an object reference, a URI, or a ref plus a relative URI appended to it.

    `audience` is the OIDC audience the receiver accepts: with sender identity on, a delivery to
    a Destination that names one carries a token for it, one that names none carries no token.
    """

    ref: KReference | None = None
    uri: str | None = None
    audience: str | None = None

    @classmethod
    def from_manifest(cls, obj: object, path: str) -> Destination:
        """Read a Destination with the rules of knative.dev/pkg `duck/v1.Destination.Validate`.

        At least one of ref and uri; a URI alone must be absolute (scheme and host); a URI next
        to a ref must be relative (it is appended to the ref's address).
        """
        fields = _mapping(obj, path)
        ref = KReference.from_manifest(fields["ref"], f"{path}.ref") if fields.get("ref") else None
        uri = _optional_string(fields, "uri", path) or None
        audience = _optional_string(fields, "audience", path) or None
        if ref is None and uri is None:
            raise FieldError(path, "expected at least one of ref and uri, got neither")
        if uri is not None:
            parts = urlsplit(uri)
            absolute = bool(parts.scheme) and bool(parts.netloc)
            if ref is None and not absolute:
                raise FieldError(f"{path}.uri", f"{uri!r}: a URI without a ref must be absolute")
            if ref is not None and parts.scheme:
                raise FieldError(
                    f"{path}.uri", f"{uri!r}: a URI next to a ref must be relative (a path)"
                )
        return cls(ref=ref, uri=uri, audience=audience)

    def resolve(
        self, namespace: str, address_of: Callable[[KReference, str], str | None]
    ) -> str | None:
        """The URL events go to, as Knative's resolver finds it; None if the ref has no address.

        A ref's address (`address_of(ref, its namespace or the referrer's)`) with a relative
        `uri` resolved against it (RFC 3986), or the absolute `uri` alone.
        """
        if self.ref is None:
            return self.uri
        base = address_of(self.ref, self.ref.namespace or namespace)
        if base is None:
            return None
        return urljoin(base, self.uri) if self.uri else base


def _mapping(obj: object, path: str) -> Mapping[str, object]:
    if not isinstance(obj, Mapping):
        raise FieldError(path, f"expected an object, not {type(obj).__name__}")
    return obj


def _string(fields: Mapping[str, object], key: str, path: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise FieldError(f"{path}.{key}", f"expected a string, not {value!r}")
    return value


def _optional_string(fields: Mapping[str, object], key: str, path: str) -> str | None:
    if fields.get(key) is None:
        return None
    return _string(fields, key, path)
