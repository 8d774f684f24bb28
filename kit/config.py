"""The kit's configuration, read from the environment once at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from wire.limits import MAX_BODY_BYTES

DEFAULT_MAX_EVENT_BYTES = MAX_BODY_BYTES
# How long a request waits for the database (SQLite's write lock, a pooled or a new PostgreSQL
# connection) before it is answered 503: well below what a sender waits for the answer (the
# Knative Service's 60 s request timeout, the local broker's 300 s attempt timeout), so that
# a busy database is a retry, not a timeout.
DEFAULT_DATABASE_WAIT_SECONDS = 5.0
# How long an Idempotency-Key is remembered (kit/request_keys.py).
DEFAULT_IDEMPOTENCY_KEY_HOURS = 24.0


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot start with."""


@dataclass(frozen=True)
class KitConfig:
    """What every service needs to know about its surroundings."""

    service: str
    database_url: str
    source: str
    sink: str | None = None
    ce_overrides: Mapping[str, str] = field(default_factory=dict)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    relay_enabled: bool = True
    relay_poll_seconds: float = 1.0
    log_level: str = "INFO"
    migrate_at_start: bool = True
    database_wait_seconds: float = DEFAULT_DATABASE_WAIT_SECONDS
    idempotency_key_hours: float = DEFAULT_IDEMPOTENCY_KEY_HOURS

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> KitConfig:
        """Build the configuration of `service` from environment variables.

        DATABASE_URL (default: SQLite under .shop/data), K_SINK or BROKER_URL (where originated
        events go), K_CE_OVERRIDES (JSON set by a SinkBinding), EVENT_SOURCE, MAX_EVENT_BYTES,
        OUTBOX_POLL_SECONDS, OUTBOX_RELAY (0 turns the relay off), LOG_LEVEL, MIGRATE_AT_START (0:
        the schema is migrated by someone else, start only checks it is at head),
        DATABASE_WAIT_SECONDS (how long a request waits for a busy or unreachable database
        before it is answered 503), IDEMPOTENCY_KEY_HOURS (how long an Idempotency-Key is kept).
        """
        env = os.environ if environ is None else environ
        return cls(
            service=service,
            database_url=env.get("DATABASE_URL") or f"sqlite:///.shop/data/{service}.db",
            source=env.get("EVENT_SOURCE") or f"/shop/{service}",
            sink=env.get("K_SINK") or env.get("BROKER_URL") or None,
            ce_overrides=parse_ce_overrides(env.get("K_CE_OVERRIDES")),
            max_event_bytes=_positive_int(env, "MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES),
            relay_enabled=env.get("OUTBOX_RELAY", "1") != "0",
            relay_poll_seconds=float(env.get("OUTBOX_POLL_SECONDS", "1.0")),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            migrate_at_start=env.get("MIGRATE_AT_START", "1") != "0",
            database_wait_seconds=_positive_float(
                env, "DATABASE_WAIT_SECONDS", DEFAULT_DATABASE_WAIT_SECONDS
            ),
            idempotency_key_hours=_positive_float(
                env, "IDEMPOTENCY_KEY_HOURS", DEFAULT_IDEMPOTENCY_KEY_HOURS
            ),
        )


def parse_ce_overrides(raw: str | None) -> dict[str, str]:
    """The extensions of a SinkBinding's K_CE_OVERRIDES (`{"extensions": {"k": "v"}}`)."""
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"K_CE_OVERRIDES is not JSON: {error}") from error
    extensions = document.get("extensions", {}) if isinstance(document, dict) else None
    if not isinstance(extensions, dict):
        raise ConfigError('K_CE_OVERRIDES must look like {"extensions": {"name": "value"}}')
    return {str(name): str(value) for name, value in extensions.items()}


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from error
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from error
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value
