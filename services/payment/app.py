"""The payment service: authorises orders and voids cancelled ones, through a card processor.

It has no HTTP API of its own beyond the kit's (`POST /`, health, metrics).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask

from catalog import load_catalog
from kit import KitConfig, create_service
from kit.config import ConfigError
from services.payment.handlers import handlers
from services.payment.migrations import HISTORY
from services.payment.processor import (
    CARD_PROCESSOR,
    DEFAULT_AMOUNT_LIMIT,
    DEFAULT_TRANSIENT_FAILURES,
    TestModeCardProcessor,
)

SERVICE = "payment"
log = logging.getLogger("shop.payment")


@dataclass(frozen=True)
class PaymentConfig:
    """The payment service's configuration: the kit's, and the test-mode processor's."""

    kit: KitConfig
    transient_failures: int = DEFAULT_TRANSIENT_FAILURES
    amount_limit: int = DEFAULT_AMOUNT_LIMIT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PaymentConfig:
        """TEST_CARD_TRANSIENT_FAILURES and TEST_CARD_AMOUNT_LIMIT tune the test-mode processor."""
        env = os.environ if environ is None else environ
        return cls(
            KitConfig.from_env(SERVICE, env),
            transient_failures=_count(
                env, "TEST_CARD_TRANSIENT_FAILURES", DEFAULT_TRANSIENT_FAILURES
            ),
            amount_limit=_count(env, "TEST_CARD_AMOUNT_LIMIT", DEFAULT_AMOUNT_LIMIT),
        )


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from error
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def create_app(config: PaymentConfig | None = None) -> Flask:
    """The payment service's WSGI app: `gunicorn "services.payment.app:create_app()"`."""
    config = config or PaymentConfig.from_env()
    processor = TestModeCardProcessor(
        transient_failures=config.transient_failures, amount_limit=config.amount_limit
    )
    service = create_service(
        SERVICE,
        handlers,
        config=config.kit,
        schemas=load_catalog().registry,
        migrations=HISTORY,
        # Its events' subject is the order id: as `partitionkey`, an order's events stay in order.
        partition_by_subject=True,
        resources={CARD_PROCESSOR: processor},
    )
    log.warning(
        "payment uses the TEST-MODE card processor: no money moves (tokens in docs/services.md)"
    )
    return service.start().app
