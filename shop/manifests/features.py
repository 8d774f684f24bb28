"""Knative's feature flags (`config-features` in `knative-eventing`) that the local system honours.

Read as `pkg/apis/feature/features.go` reads them: keys trimmed, keys starting with `_` skipped,
values compared without regard to case. Where Knative keeps a value it does not know (and then
behaves as if the flag were off, or, for the authorization mode, allows everyone), the local
reader refuses it: a misspelt `Deny-all` must not silently mean Allow-All.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from shop.manifests.core import ConfigMap
from shop.manifests.fields import field_path

AuthorizationMode = Literal["Allow-All", "Allow-Same-Namespace", "Deny-All"]

FEATURES_NAMESPACE = "knative-eventing"
FEATURES_NAME = "config-features"
OIDC_FLAG = "authentication-oidc"
MODE_FLAG = "default-authorization-mode"
AUTHORIZATION_MODES: tuple[AuthorizationMode, ...] = (
    "Allow-All",
    "Allow-Same-Namespace",
    "Deny-All",
)
# Knative's defaults (features.go newDefaults): OIDC off, same-namespace senders allowed.
DEFAULT_AUTHORIZATION_MODE: AuthorizationMode = "Allow-Same-Namespace"
_FLAG_STATES = ("enabled", "disabled", "allowed")


@dataclass(frozen=True)
class Features:
    """`authentication-oidc` (sender identity) and `default-authorization-mode`: what a
    resource that no EventPolicy applies to lets in."""

    oidc: bool = False
    default_authorization_mode: AuthorizationMode = DEFAULT_AUTHORIZATION_MODE


def read_features(config_maps: Iterable[ConfigMap]) -> Features:
    """The flags of the manifests' `knative-eventing/config-features`, else Knative's defaults."""
    found = next(
        (
            item
            for item in config_maps
            if (item.namespace, item.name) == (FEATURES_NAMESPACE, FEATURES_NAME)
        ),
        None,
    )
    if found is None:
        return Features()
    features = Features()
    for key, value in found.data.items():
        flag = key.strip()
        if flag.startswith("_"):
            continue
        if flag == OIDC_FLAG:
            state = value.lower()
            if state not in _FLAG_STATES:
                raise found.error(
                    field_path("data", key), f"{value!r} is not one of enabled, disabled"
                )
            features = replace(features, oidc=state == "enabled")
        elif flag == MODE_FLAG:
            mode = next((m for m in AUTHORIZATION_MODES if m.lower() == value.lower()), None)
            if mode is None:
                raise found.error(
                    field_path("data", key),
                    f"{value!r} is not one of {', '.join(AUTHORIZATION_MODES)}",
                )
            features = replace(features, default_authorization_mode=mode)
    return features
