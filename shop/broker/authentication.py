"""Who sent a request to the ingress: the subject of its bearer token, checked for the broker.

As Knative's verifier (`verifyAuthN`): no token is 401, a token that does not verify for the
broker's audience (`eventing.knative.dev/broker/<ns>/<name>`) is 401. When the issuer's keys
cannot be fetched the answer is 503 with Retry-After, where Knative's ingress, whose OIDC
provider failed to start, answers 401 until its config changes.

Keys are fetched through a KeySet; when a token needs a fetch (none held yet, stale, or a new
key id) the check runs in a worker thread, so the event loop never waits on the network.

A signature check costs about as much CPU as the rest of taking an event in, and a producer
sends the same token for as long as it lives (a SinkBinding's token file, an hour): a token
that verified is remembered, with its subject, until it expires.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable

from shop.broker.acceptance import Refused
from shop.broker.routes import BrokerRoute
from wire.oidc.keys import IssuerUnavailable, KeySet
from wire.oidc.subjects import broker_audience
from wire.oidc.verify import InvalidToken, TokenVerifier, bearer_token

AUTHORIZATION = "Authorization"
_CHALLENGE = (("WWW-Authenticate", "Bearer"),)
# Verified tokens remembered; past this many (a producer minting per request) they are forgotten.
MAX_REMEMBERED = 4096


class Authenticator:
    """Verifies bearer tokens for each broker's audience against one issuer's keys."""

    def __init__(
        self,
        keys: KeySet,
        brokers: Iterable[BrokerRoute],
        retry_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._verified: dict[tuple[str, str], tuple[str, float]] = {}
        self._verifiers = {
            broker.key: TokenVerifier(keys, broker_audience(broker.namespace, broker.name))
            for broker in brokers
        }
        self._retry_after = (("Retry-After", str(max(1, math.ceil(retry_after)))),)

    async def subject(self, broker: BrokerRoute, authorization: str | None) -> str:
        """The verified subject of the request's token; raises Refused (401 or 503)."""
        verifier = self._verifiers[broker.key]
        token = bearer_token(authorization)
        if token is None:
            raise _unauthorized(
                "no bearer token: with sender identity on, the broker takes events only with "
                f"`Authorization: Bearer <token>` for audience {verifier.audience!r}"
            )
        remembered = self._verified.get((broker.key, token))
        if remembered is not None and self._clock() < remembered[1]:
            return remembered[0]
        try:
            kid = verifier.key_id(token)
            if self._keys.needs_fetch(kid if isinstance(kid, str) else None):
                verified = await asyncio.to_thread(verifier.verify, token)
            else:
                verified = verifier.verify(token)
        except InvalidToken as error:
            raise _unauthorized(str(error)) from None
        except IssuerUnavailable as error:
            raise Refused(
                503,
                f"the token cannot be checked now: the OIDC issuer is unreachable ({error})",
                headers=self._retry_after,
            ) from None
        if len(self._verified) >= MAX_REMEMBERED:
            self._verified.clear()
        self._verified[(broker.key, token)] = (verified.subject, verified.expires_at)
        return verified.subject


def _unauthorized(message: str) -> Refused:
    return Refused(401, message, field=AUTHORIZATION, headers=_CHALLENGE)
