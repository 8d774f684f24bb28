"""Who sent an event: the bearer token of `POST /`, checked before anything else of the request.

With Knative's `authentication-oidc` feature, every delivery carries a token from the cluster's
issuer for the receiver's audience (a Trigger's `subscriber.audience`), naming the sender's
ServiceAccount (wire/oidc/subjects.py). A service with OIDC_AUDIENCE and OIDC_ISSUER set takes
only such requests, and with OIDC_ALLOWED_SUBJECTS only from those senders (an EventPolicy's
`sub` patterns). The answers follow what Knative's own receivers answer: 401 for no or a bad
token, 403 for a sender not allowed; 503 while the issuer's keys cannot be had, so that the
sender retries rather than dead-letters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import jwt

from kit.config import SenderIdentityConfig
from kit.metrics import KitMetrics
from wire.oidc.keys import KeySet
from wire.oidc.subjects import any_matches
from wire.oidc.verify import InvalidToken, IssuerUnavailable, TokenVerifier, bearer_token

log = logging.getLogger("shop.kit")

AUTHORIZATION = "Authorization"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# A claimed (unverified) subject is logged, cut to this length: it is whatever the sender wrote.
_LOGGED_SUBJECT_CHARACTERS = 256


@dataclass(frozen=True)
class SenderRefusal:
    """Why a request's sender is refused: the status, the kit's JSON error body, the headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class SenderCheck:
    """Verifies the sender of each request to `POST /`; one per worker process (thread-safe)."""

    def __init__(self, config: SenderIdentityConfig, metrics: KitMetrics) -> None:
        keys = KeySet(config.issuer, min_refetch=config.key_refetch_seconds)
        self._verifier = TokenVerifier(keys, config.audience)
        self._allowed = config.allowed_subjects
        self._retry_after = max(1, math.ceil(config.key_refetch_seconds))
        self._refusals = metrics.sender_refusals

    def refusal(self, authorization: str | None) -> SenderRefusal | None:
        """None when the `Authorization` header proves an allowed sender, else the answer."""
        token = bearer_token(authorization)
        if token is None:
            reason = (
                "the request has no bearer token"
                if not authorization
                else "the Authorization header does not hold a bearer token"
            )
            return self._unauthenticated("missing", reason, None)
        try:
            verified = self._verifier.verify(token)
        except InvalidToken as error:
            return self._unauthenticated("invalid", str(error), _claimed_subject(token))
        except IssuerUnavailable as error:
            return self._issuer_unavailable(str(error), _claimed_subject(token))
        if self._allowed and not any_matches(self._allowed, verified.subject):
            reason = f"sender {verified.subject!r} is not allowed to send events here"
            self._refused("forbidden", 403, reason, verified.subject)
            return SenderRefusal(403, {"error": reason, "subject": verified.subject})
        return None

    def _unauthenticated(self, label: str, reason: str, subject: str | None) -> SenderRefusal:
        self._refused(label, 401, reason, subject)
        return SenderRefusal(401, {"error": reason, "field": AUTHORIZATION}, dict(_CHALLENGE))

    def _issuer_unavailable(self, cause: str, subject: str | None) -> SenderRefusal:
        reason = "the sender's token cannot be checked now: the token issuer is unreachable"
        self._refused("issuer_unavailable", 503, f"{reason} ({cause})", subject)
        return SenderRefusal(503, {"error": reason}, {"Retry-After": str(self._retry_after)})

    def _refused(self, label: str, status: int, reason: str, subject: str | None) -> None:
        self._refusals.labels(label).inc()
        log.warning(
            "sender refused: %s",
            reason,
            extra={
                "outcome": "sender_refused",
                "status": status,
                "error": reason,
                "sender": subject,
            },
        )


def _claimed_subject(token: str) -> str | None:
    """The `sub` a token claims, unverified: for the log line of its refusal only."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    subject = claims.get("sub")
    return subject[:_LOGGED_SUBJECT_CHARACTERS] if isinstance(subject, str) else None
