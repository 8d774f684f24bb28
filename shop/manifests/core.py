"""ConfigMaps and Secrets (core v1), the sources of a Service's environment."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from shop.manifests.objects import ManifestObject, Metadata


@dataclass(frozen=True, kw_only=True)
class ConfigMap(ManifestObject):
    """A ConfigMap's `data` (binaryData is not usable in an environment and is not kept)."""

    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Secret(ManifestObject):
    """A Secret's values: `data` base64-decoded, with `stringData` merged over it as on write."""

    data: Mapping[str, bytes] = field(default_factory=dict)


def read_config_map(meta: Metadata) -> ConfigMap:
    """Read a ConfigMap; every `data` value must be a string (quote numbers and booleans)."""
    return ConfigMap(**meta.common(), data=meta.root.text_map("data"))


def read_secret(meta: Metadata) -> Secret:
    """Read a Secret, decoding `data` as the API server does (standard base64, padded)."""
    encoded = meta.root.text_map("data")
    data: dict[str, bytes] = {}
    for key, value in encoded.items():
        try:
            data[key] = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise meta.root.mapping("data").error(key, "is not valid base64") from None
    for key, text in meta.root.text_map("stringData").items():
        data[key] = text.encode("utf-8")
    return Secret(**meta.common(), data=data)
