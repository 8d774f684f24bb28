"""An issuer's signing keys, found through its OIDC discovery document and kept for a while.

Keys are fetched once, kept for `max_age` seconds, and fetched again early when a token names a
key id the set does not hold (the issuer rotated its keys), but never more often than every
`min_refetch` seconds: a stream of tokens with made-up key ids cannot turn the receiver into a
client hammering the issuer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

DISCOVERY_PATH = "/.well-known/openid-configuration"


class IssuerUnavailable(Exception):
    """The issuer's discovery document or keys could not be fetched, and none are at hand."""


@dataclass(frozen=True)
class IssuerSettings:
    """Where an issuer is and how to reach it (the `OIDC_*` variables of docs/security.md)."""

    issuer: str
    discovery_url: str | None = None
    ca_file: str | None = None
    discovery_token_file: str | None = None
    timeout: float = 3.0

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + DISCOVERY_PATH


Fetch = Callable[[str, IssuerSettings], Mapping[str, Any]]


def fetch_json(url: str, settings: IssuerSettings) -> Mapping[str, Any]:
    """GET a JSON document from the issuer (with the discovery bearer token and CA if set)."""
    headers = {"Accept": "application/json"}
    if settings.discovery_token_file:
        token = Path(settings.discovery_token_file).read_text().strip()
        headers["Authorization"] = f"Bearer {token}"
    verify: bool | str = settings.ca_file or True
    try:
        response = requests.get(url, headers=headers, timeout=settings.timeout, verify=verify)
        response.raise_for_status()
        document = response.json()
    except (OSError, requests.RequestException, ValueError) as error:
        raise IssuerUnavailable(f"{url}: {error}") from error
    if not isinstance(document, Mapping):
        raise IssuerUnavailable(f"{url}: not a JSON object")
    return document


class KeySet:
    """The issuer's public keys by key id; thread-safe."""

    def __init__(
        self,
        settings: IssuerSettings,
        *,
        max_age: float = 300.0,
        min_refetch: float = 10.0,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._max_age = max_age
        self._min_refetch = min_refetch
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._last_error: str | None = None
        self.fetches = 0

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this id (None: the issuer has no such key, even after a refetch).

        Raises IssuerUnavailable when the keys are needed and cannot be fetched.
        """
        with self._lock:
            if self._stale():
                self._refresh_or_keep()
            found = self._lookup(kid)
            if found is None and self._may_refetch():
                self._refresh_or_keep()
                found = self._lookup(kid)
            if not self._keys:
                # Not "no such key": without any key the set cannot tell, until a fetch works.
                raise IssuerUnavailable(
                    self._last_error or f"{self.settings.discovery} publishes no signing keys"
                )
            return found

    def needs_fetch(self, kid: str | None) -> bool:
        """Whether `key(kid)` would go to the network (for callers on an event loop)."""
        with self._lock:
            return self._stale() or (self._lookup(kid) is None and self._may_refetch())

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _stale(self) -> bool:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._max_age:
            return False
        return self._may_refetch()

    def _may_refetch(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self._min_refetch

    def _refresh_or_keep(self) -> None:
        self._tried_at = self._clock()
        try:
            self._keys = self._download()
        except IssuerUnavailable as error:
            self._last_error = str(error)
            if not self._keys:
                raise
            return  # the keys we hold stay good until the issuer answers again
        self._last_error = None
        self._fetched_at = self._tried_at

    def _download(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        discovery = self._fetch(self.settings.discovery, self.settings)
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnavailable(f"{self.settings.discovery} names no jwks_uri")
        document = self._fetch(jwks_uri, self.settings)
        try:
            key_set = jwt.PyJWKSet.from_dict(dict(document))
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, json.JSONDecodeError) as error:
            raise IssuerUnavailable(f"{jwks_uri}: no usable keys ({error})") from error
        return {key.key_id or "": key for key in key_set.keys if key.public_key_use != "enc"}
