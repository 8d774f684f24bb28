"""The tokens a Trigger's deliveries carry, minted once per (subject, audience) and kept.

Knative's dispatcher asks the API server for a token of the Trigger's ServiceAccount for the
destination's audience and caches it until five minutes before it expires
(`pkg/auth/token_provider.go`). Here the broker mints with the issuer's key: an RSA signature,
about a millisecond of CPU on the event loop, so a token is minted when first needed and again
once half its life is gone, never per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from shop.broker.http_client import encode_headers
from shop.identity.issuer import DEFAULT_LIFETIME_SECONDS, LocalIssuer


class _Minted(NamedTuple):
    header: bytes
    renew_at: float


class TokenMinter:
    """`Authorization: Bearer <token>` header lines, cached per (subject, audience)."""

    def __init__(
        self,
        issuer: LocalIssuer,
        lifetime: float = DEFAULT_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._lifetime = lifetime
        self._clock = clock
        self._minted: dict[tuple[str, str], _Minted] = {}

    def header(self, subject: str, audience: str) -> bytes:
        """The encoded header line of a valid token naming `subject`, for `audience`."""
        key = (subject, audience)
        minted = self._minted.get(key)
        now = self._clock()
        if minted is None or now >= minted.renew_at:
            token = self._issuer.mint(subject, audience, self._lifetime)
            header = encode_headers((("Authorization", f"Bearer {token}"),))
            minted = _Minted(header, now + self._lifetime / 2)
            self._minted[key] = minted
        return minted.header
