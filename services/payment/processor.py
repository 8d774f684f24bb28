"""The card-processor seam and the one processor shipped: a test-mode processor.

`TestModeCardProcessor` moves no money and talks to no network. What it does depends on the
payment token (see docs/services.md):

| token           | result                                                                  |
|-----------------|-------------------------------------------------------------------------|
| `tok_ok`        | authorised (up to the amount limit)                                     |
| `tok_declined`  | declined (`card_declined`)                                              |
| `tok_transient` | unavailable for the first N attempts per order, then like `tok_ok`      |
| anything else   | declined (`unknown_token`)                                              |

An amount over the limit is declined (`amount_limit`). Like a real processor it is idempotent
on the key it is given (the order id): authorising the same key again returns the first
authorisation instead of charging twice.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from typing import Protocol

from kit import ResourceKey

TOKEN_OK = "tok_ok"
TOKEN_DECLINED = "tok_declined"
TOKEN_TRANSIENT = "tok_transient"
DEFAULT_TRANSIENT_FAILURES = 2
DEFAULT_AMOUNT_LIMIT = 1_000_000  # minor units: 10,000.00 in a two-decimal currency


@dataclass(frozen=True)
class Authorized:
    authorization_id: str


@dataclass(frozen=True)
class Declined:
    code: str
    reason: str


class ProcessorUnavailable(Exception):
    """The processor cannot answer now; the same request may succeed later."""


class CardProcessor(Protocol):
    """What the payment service needs from a card processor."""

    def authorize(
        self, *, key: str, token: str, amount: int, currency: str
    ) -> Authorized | Declined:
        """Hold `amount` on the card behind `token`; the same `key` never authorises twice."""
        ...

    def void(self, authorization_id: str) -> None:
        """Release a hold (idempotent)."""
        ...


CARD_PROCESSOR: ResourceKey[CardProcessor] = ResourceKey("card_processor")


@dataclass(frozen=True)
class TestAuthorization:
    """A hold the test-mode processor granted."""

    __test__ = False  # not a pytest test class

    authorization_id: str
    key: str
    token: str
    amount: int
    currency: str
    voided: bool = False


class TestModeCardProcessor:
    """A card processor for development and tests, with documented test tokens.

    Its memory (authorisations, attempts of `tok_transient`) lives in the process, as a real
    processor's lives on its side: after a restart `tok_transient` fails N more times.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        transient_failures: int = DEFAULT_TRANSIENT_FAILURES,
        amount_limit: int = DEFAULT_AMOUNT_LIMIT,
    ) -> None:
        self.transient_failures = transient_failures
        self.amount_limit = amount_limit
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._by_key: dict[str, TestAuthorization] = {}
        self._by_id: dict[str, TestAuthorization] = {}
        # The key of every call answered "authorised", repeats included: a service that never
        # charges twice has each key here at most once.
        self.granted: list[str] = []

    def authorize(
        self, *, key: str, token: str, amount: int, currency: str
    ) -> Authorized | Declined:
        with self._lock:
            self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
            if token == TOKEN_TRANSIENT and attempt <= self.transient_failures:
                raise ProcessorUnavailable(
                    f"test mode: {TOKEN_TRANSIENT} fails {self.transient_failures} times per"
                    f" order (attempt {attempt})"
                )
            if token == TOKEN_DECLINED:
                return Declined("card_declined", "the card was declined")
            if token not in (TOKEN_OK, TOKEN_TRANSIENT):
                return Declined("unknown_token", f"test mode does not know the token {token!r}")
            if amount > self.amount_limit:
                return Declined(
                    "amount_limit", f"{amount} is over the test-mode limit of {self.amount_limit}"
                )
            self.granted.append(key)
            existing = self._by_key.get(key)
            if existing is not None:
                return Authorized(existing.authorization_id)
            digest = hashlib.sha256(key.encode()).hexdigest()[:16]
            held = TestAuthorization(f"auth_test_{digest}", key, token, amount, currency)
            self._by_key[key] = self._by_id[held.authorization_id] = held
            return Authorized(held.authorization_id)

    def void(self, authorization_id: str) -> None:
        with self._lock:
            held = self._by_id.get(authorization_id)
            if held is None:
                raise KeyError(f"test mode: no authorisation {authorization_id!r}")
            voided = replace(held, voided=True)
            self._by_id[authorization_id] = self._by_key[held.key] = voided

    def authorization(self, key: str) -> TestAuthorization | None:
        """The hold granted for `key`, if any (tests and the property test read it)."""
        with self._lock:
            return self._by_key.get(key)
