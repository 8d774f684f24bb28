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
    log_level: str = "INFO"

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
