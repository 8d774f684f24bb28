"""The kit's configuration, read from the environment once at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wire.limits import MAX_BODY_BYTES
from wire.oidc.keys import IssuerSettings
from wire.oidc.sender_token import DEFAULT_TOKEN_FILE
from wire.oidc.subjects import SubjectPattern, parse_patterns

DEFAULT_MAX_EVENT_BYTES = MAX_BODY_BYTES
# How long a request waits for the database (SQLite's write lock, a pooled or a new PostgreSQL
# connection) before it is answered 503: well below what a sender waits for the answer (the
# Knative Service's 60 s request timeout, the local broker's 300 s attempt timeout), so that
# a busy database is a retry, not a timeout.
DEFAULT_DATABASE_WAIT_SECONDS = 5.0
# How long an Idempotency-Key is remembered (kit/request_keys.py).
DEFAULT_IDEMPOTENCY_KEY_HOURS = 24.0
# The least time between two fetches of the issuer's keys, and so the Retry-After of a 503 while
# the issuer is unreachable (wire/oidc/keys.py).
DEFAULT_KEY_REFETCH_SECONDS = 10.0
# OTEL_TRACES_SAMPLER's values (the OpenTelemetry SDK's environment variables) and which take a
# ratio as OTEL_TRACES_SAMPLER_ARG.
TRACES_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot start with."""


@dataclass(frozen=True)
class SenderIdentityConfig:
    """Who may post events to `POST /`: a token from `issuer` for `audience`, whose subject
    matches one of `allowed_subjects` (none: any subject the issuer vouches for)."""

    audience: str
    issuer: IssuerSettings
    allowed_subjects: tuple[SubjectPattern, ...] = ()
    key_refetch_seconds: float = DEFAULT_KEY_REFETCH_SECONDS


@dataclass(frozen=True)
class TracingConfig:
    """Where the service's spans go (OTLP/HTTP protobuf) and which traces it records."""

    #: The URL spans are posted to (the `/v1/traces` of an OTLP/HTTP receiver).
    endpoint: str
    #: The resource's `service.name`.
    service_name: str
    sampler: str = "parentbased_always_on"
    #: The ratio of the `*traceidratio` samplers.
    sampler_ratio: float = 1.0


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
    #: None: senders are not checked (OIDC_AUDIENCE and OIDC_ISSUER unset).
    sender_identity: SenderIdentityConfig | None = None
    #: The token the outbox relay sends with each event, when the file exists.
    sender_token_file: str = DEFAULT_TOKEN_FILE
    #: None: no spans are recorded (no OTLP endpoint configured).
    tracing: TracingConfig | None = None

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> KitConfig:
        """Build the configuration of `service` from environment variables.

        DATABASE_URL (default: SQLite under .shop/data), K_SINK or BROKER_URL (where originated
        events go), K_CE_OVERRIDES (JSON set by a SinkBinding), EVENT_SOURCE, MAX_EVENT_BYTES,
        OUTBOX_POLL_SECONDS, OUTBOX_RELAY (0 turns the relay off), LOG_LEVEL, MIGRATE_AT_START (0:
        the schema is migrated by someone else, start only checks it is at head),
        DATABASE_WAIT_SECONDS (how long a request waits for a busy or unreachable database
        before it is answered 503), IDEMPOTENCY_KEY_HOURS (how long an Idempotency-Key is kept),
        the OIDC_* variables of sender identity (`parse_sender_identity`), OIDC_TOKEN_FILE
        (the token the relay sends, default /oidc/token) and the OTEL_* variables of traces
        (`parse_tracing`).
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
            sender_identity=parse_sender_identity(env),
            sender_token_file=env.get("OIDC_TOKEN_FILE") or DEFAULT_TOKEN_FILE,
            tracing=parse_tracing(env, service),
        )


def parse_tracing(env: Mapping[str, str], service: str) -> TracingConfig | None:
    """The OpenTelemetry SDK's variables the kit reads: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the
    URL as it is), else OTEL_EXPORTER_OTLP_ENDPOINT (+ `/v1/traces`); neither, OTEL_SDK_DISABLED
    =true or OTEL_TRACES_EXPORTER=none: no tracing. OTEL_SERVICE_NAME (default: the service's
    name), OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. The exporter and the batch processor
    read the rest of theirs themselves (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, OTEL_BSP_*...)."""
    traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    endpoint = traces_endpoint or (f"{base.rstrip('/')}/v1/traces" if base else "")
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter not in ("otlp", "none"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp or none, got {exporter!r}")
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    if not endpoint or disabled or exporter == "none":
        return None
    name = (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" if traces_endpoint else "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    _http_url(name, endpoint)
    for protocol_name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(protocol_name, "").strip()
        if protocol and protocol != "http/protobuf":
            raise ConfigError(
                f"{protocol_name} must be http/protobuf (the kit's exporter), got {protocol!r}"
            )
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if sampler not in TRACES_SAMPLERS:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER must be one of {', '.join(TRACES_SAMPLERS)}, got {sampler!r}"
        )
    return TracingConfig(
        endpoint=endpoint,
        service_name=env.get("OTEL_SERVICE_NAME", "").strip() or service,
        sampler=sampler,
        sampler_ratio=_sampler_ratio(env) if sampler in _RATIO_SAMPLERS else 1.0,
    )


def _sampler_ratio(env: Mapping[str, str]) -> float:
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not raw:
        return 1.0
    try:
        ratio = float(raw)
    except ValueError as error:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be a number, got {raw!r}") from error
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got {raw!r}")
    return ratio


def parse_sender_identity(env: Mapping[str, str]) -> SenderIdentityConfig | None:
    """OIDC_AUDIENCE and OIDC_ISSUER (both, or neither: no checking), OIDC_DISCOVERY_URL,
    OIDC_ALLOWED_SUBJECTS (comma-separated EventPolicy `sub` patterns), OIDC_CA_FILE and
    OIDC_DISCOVERY_TOKEN_FILE (how to reach the issuer)."""
    audience = env.get("OIDC_AUDIENCE", "").strip()
    issuer = env.get("OIDC_ISSUER", "").strip()
    allowed = _subject_patterns(env.get("OIDC_ALLOWED_SUBJECTS", ""))
    if not audience and not issuer:
        if allowed:
            raise ConfigError(
                "OIDC_ALLOWED_SUBJECTS is set, but senders are not checked without "
                "OIDC_AUDIENCE and OIDC_ISSUER"
            )
        return None
    if not audience or not issuer:
        given, missing = (
            ("OIDC_ISSUER", "OIDC_AUDIENCE") if issuer else ("OIDC_AUDIENCE", "OIDC_ISSUER")
        )
        raise ConfigError(f"{given} is set but {missing} is not: checking senders needs both")
    discovery_url = env.get("OIDC_DISCOVERY_URL", "").strip() or None
    _http_url("OIDC_ISSUER", issuer)
    if discovery_url is not None:
        _http_url("OIDC_DISCOVERY_URL", discovery_url)
    settings = IssuerSettings(
        issuer,
        discovery_url=discovery_url,
        ca_file=_existing_file(env, "OIDC_CA_FILE"),
        discovery_token_file=_existing_file(env, "OIDC_DISCOVERY_TOKEN_FILE"),
    )
    return SenderIdentityConfig(audience, settings, allowed)


def _subject_patterns(raw: str) -> tuple[SubjectPattern, ...]:
    patterns = parse_patterns(raw)
    for pattern in patterns:
        if "*" in pattern.text[:-1]:
            raise ConfigError(
                f"OIDC_ALLOWED_SUBJECTS: {pattern.text!r} has a '*' before its end "
                "(only a trailing '*' matches, as a prefix)"
            )
    return patterns


def _http_url(name: str, value: str) -> None:
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an https:// (or http://) URL, got {value!r}")


def _existing_file(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ConfigError(f"{name} names {raw!r}, which is not a file")
    return raw


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
