"""Checking a sender's token: signature against the issuer's keys, issuer, audience and lifetime.

Only asymmetric algorithms are accepted, and only the one the issuer's key is for: a token
signed with `alg: none`, or with HS256 keyed by the issuer's public key, is refused before any
signature is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from wire.oidc.keys import IssuerUnavailable, KeySet

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_LEEWAY_SECONDS = 30.0
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

__all__ = ["InvalidToken", "IssuerUnavailable", "TokenVerifier", "VerifiedToken", "bearer_token"]


class InvalidToken(Exception):
    """A token that proves nothing: malformed, expired, for someone else, or badly signed."""


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    issuer: str
    expires_at: float
    claims: Mapping[str, Any]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None: no bearer token)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenVerifier:
    """Verifies tokens of one issuer for one audience."""

    def __init__(
        self, keys: KeySet, audience: str, *, leeway: float = DEFAULT_LEEWAY_SECONDS
    ) -> None:
        self.keys = keys
        self.audience = audience
        self.issuer = keys.settings.issuer
        self._leeway = leeway

    def key_id(self, token: str) -> str | None:
        """The `kid` the token's header names (raises InvalidToken when it has no header)."""
        return _header(token).get("kid")

    def verify(self, token: str) -> VerifiedToken:
        """The token's subject and claims; raises InvalidToken or IssuerUnavailable."""
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise InvalidToken(f"the token's algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        key = self.keys.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise InvalidToken(f"the issuer has no key {kid!r}")
        if key.algorithm_name != algorithm:
            raise InvalidToken(f"key {kid!r} is for {key.algorithm_name}, not {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("the token has expired") from error
        except jwt.ImmatureSignatureError as error:
            raise InvalidToken("the token is not valid yet") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken(f"the token is not for audience {self.audience!r}") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidToken(f"the token is not from issuer {self.issuer!r}") from error
        except jwt.InvalidSignatureError as error:
            raise InvalidToken("the token's signature does not verify") from error
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token has no {error.claim!r} claim") from error
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"the token is not valid: {error}") from error
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token names no subject")
        return VerifiedToken(subject, self.issuer, float(claims["exp"]), claims)


def _header(token: str) -> Mapping[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise InvalidToken("the bearer token is not a JWT") from error
