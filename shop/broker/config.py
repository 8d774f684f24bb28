"""The broker's settings, read once from the command line into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wire.limits import MAX_BODY_BYTES

Synchronous = Literal["normal", "full"]

DEFAULT_PORT = 8080
DEFAULT_CONCURRENCY = 32
# Knative's MT broker reads a whole body without a limit; the Kafka broker, whose durability
# this broker copies, caps an event at 1 MiB.
DEFAULT_MAX_EVENT_BYTES = MAX_BODY_BYTES
# Without `delivery.timeout` Knative's HTTP client waits as long as the subscriber takes; a
# local subscriber that hangs would hold a delivery slot forever, so cap it at what a ksvc's
# default `timeoutSeconds` allows anyway.
DEFAULT_ATTEMPT_TIMEOUT = 300.0
# Backpressure: the ingress stops reading requests while more deliveries than this are
# unfinished (each holds its event in memory) or more accepted events than this wait for their
# commit, and reads again below four fifths of it.
MAX_UNFINISHED_DELIVERIES = 100_000
MAX_WAITING_ACCEPTS = 10_000
# The most events one replay (`POST /_shop/replay`, `shop replay`) sends; more are refused.
MAX_REPLAY_EVENTS = 10_000
# Retention (docs/broker.md): an event whose deliveries are all final is pruned once it is older
# than this, or, oldest first, while the store holds more than this. A laptop's working day of
# local runs fits, and a soak at 500 events/s stays well under a gigabyte.
DEFAULT_RETENTION_AGE = 3600.0
DEFAULT_RETENTION_BYTES = 256 * 1024 * 1024
# Sender identity: after a failed fetch of the issuer's keys, the next is tried this much later
# (the ingress answers 503 with this Retry-After meanwhile): soon enough for an issuer that is
# starting, rarely enough that refused tokens cannot make the broker hammer it.
OIDC_REFETCH_SECONDS = 2.0

_BYTE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


@dataclass(frozen=True)
class BrokerConfig:
    """Everything one broker process needs to know; tests build it directly."""

    manifests: Path
    state_dir: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    endpoints: Path | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    synchronous: Synchronous = "normal"
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    default_attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT
    max_unfinished_deliveries: int = MAX_UNFINISHED_DELIVERIES
    max_waiting_accepts: int = MAX_WAITING_ACCEPTS
    max_replay_events: int = MAX_REPLAY_EVENTS
    retention_age: float = DEFAULT_RETENTION_AGE
    retention_bytes: int = DEFAULT_RETENTION_BYTES
    log_level: str = "INFO"
    #: Sender identity (Knative's `authentication-oidc`): the issuer's URL and its private key
    #: file; both or neither. With them, deliveries carry tokens and the ingress checks them.
    oidc_issuer: str | None = None
    oidc_key: Path | None = None
    oidc_refetch: float = OIDC_REFETCH_SECONDS
    #: The RabbitMQ of every RabbitMQBroker (`--rabbitmq`), over what its RabbitmqBrokerConfig
    #: says; None: the config's, else amqp://guest:guest@127.0.0.1:5672/.
    rabbitmq_url: str | None = None
    #: The broker's own spans (an event received, each delivery attempt; `--no-tracing`: none).
    #: The OTLP receiver takes the services' spans either way.
    tracing: bool = True

    def __post_init__(self) -> None:
        if (self.oidc_issuer is None) != (self.oidc_key is None):
            raise ValueError("sender identity needs both the OIDC issuer URL and its key file")

    @property
    def sender_identity(self) -> bool:
        """Whether tokens are minted for deliveries and required at the ingress."""
        return self.oidc_issuer is not None

    @property
    def database(self) -> Path:
        """The SQLite file that holds the events, the delivery state and the journal."""
        return self.state_dir / "broker" / "broker.db"

    @property
    def endpoints_file(self) -> Path:
        """The runner's endpoints file: the one given, else `<state-dir>/run/endpoints.json`."""
        return self.endpoints or self.state_dir / "run" / "endpoints.json"

    @property
    def base_url(self) -> str:
        """How this broker's ingress is reached (the prefix of every broker URL)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def parse_age(text: str) -> float:
    """A retention age: seconds, or a number with `s`, `m`, `h` or `d` (`90s`, `1.5h`)."""
    number, unit = _split_unit(text.strip(), _AGE_UNITS)
    if number is None or number <= 0:
        raise ValueError(f"{text!r} is not an age such as 3600, 90s, 30m, 1h or 2d")
    return number * _AGE_UNITS[unit]


def parse_bytes(text: str) -> int:
    """A retention size: bytes, or a number with `K`, `M` or `G` (binary: `256M` is 256 MiB)."""
    number, unit = _split_unit(
        text.strip().upper().removesuffix("IB").removesuffix("B"), _BYTE_UNITS
    )
    if number is None or number <= 0:
        raise ValueError(f"{text!r} is not a size such as 268435456, 512K, 256M or 1G")
    return int(number * _BYTE_UNITS[unit])


def _split_unit(text: str, units: dict[str, int]) -> tuple[float | None, str]:
    unit = text[-1:] if text[-1:] in units and text[-1:] else ""
    try:
        return float(text[: len(text) - len(unit)]), unit
    except ValueError:
        return None, unit


def retention_text(age_seconds: float, max_bytes: int) -> str:
    """The retention policy in words, as the log and `shop tail` say it: `1 h or 256 MiB`."""
    return f"{_age_text(age_seconds)} or {_bytes_text(max_bytes)}"


def _age_text(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _bytes_text(count: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"
