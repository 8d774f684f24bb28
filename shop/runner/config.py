"""The settings of one `shop up` run, read once from the command line into frozen dataclasses."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from shop.runner.profile import DEFAULT_PROFILE

DEFAULT_PORT = 8080
# How long every process gets to answer /healthz before `shop up` gives up.
DEFAULT_READY_TIMEOUT = 60.0
# SIGTERM, then this long, then SIGKILL: "stops everything within a few seconds".
DEFAULT_STOP_GRACE = 5.0

_VARIABLE_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # Kubernetes' env var name rule
ALL_SERVICES = "*"


@dataclass(frozen=True)
class EnvOverride:
    """`--env SERVICE:KEY=VALUE`: set KEY for one service (`*`: every service), over all else.

    SERVICE is a Knative Service's name, or `namespace/name` where names repeat.
    """

    service: str
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> EnvOverride:
        """Read `SERVICE:KEY=VALUE`; a ValueError says what is wrong with it."""
        head, equals, value = text.partition("=")
        service, colon, key = head.partition(":")
        if not equals or not colon or not service:
            raise ValueError(f"{text!r}: expected SERVICE:KEY=VALUE (SERVICE may be *)")
        if not _VARIABLE_NAME.fullmatch(key):
            raise ValueError(f"{text!r}: {key!r} is not a valid environment variable name")
        return cls(service, key, value)

    def applies_to(self, namespace: str, name: str) -> bool:
        """Whether this override is for the Knative Service `namespace/name`."""
        return self.service in (ALL_SERVICES, name, f"{namespace}/{name}")


@dataclass(frozen=True)
class UpConfig:
    """Everything one `shop up` run needs; tests build it directly."""

    manifests: Path
    state_dir: Path
    port: int = DEFAULT_PORT
    env_overrides: tuple[EnvOverride, ...] = ()
    profile: Path = DEFAULT_PROFILE
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    stop_grace: float = DEFAULT_STOP_GRACE
    # Where every process runs: where `shop up` runs.
    cwd: Path = Path()
    # The interpreter that runs `shop up`; its bin directory (the project's virtual environment)
    # goes first on every process's PATH, and it runs the broker.
    python: str = sys.executable
    # Knative's `authentication-oidc` feature, whatever the manifests' config-features say.
    oidc: bool = False
    # The RabbitMQ of every Broker of class RabbitMQBroker (`--rabbitmq`), passed on to the
    # broker; None: each one's RabbitmqBrokerConfig, else the local default.
    rabbitmq: str | None = None
    # Traces (docs/observability.md, "Traces under shop up"): the services export their spans to
    # the broker's OTLP receiver and the broker records its own; False: neither.
    tracing: bool = True

    @property
    def run_dir(self) -> Path:
        """endpoints.json and processes.json."""
        return self.state_dir / "run"

    @property
    def endpoints_file(self) -> Path:
        return self.run_dir / "endpoints.json"

    @property
    def processes_file(self) -> Path:
        return self.run_dir / "processes.json"

    @property
    def logs_dir(self) -> Path:
        """One `<process>.log` per process, this run's output only."""
        return self.state_dir / "logs"

    @property
    def maildir(self) -> Path:
        """The Maildir the local SMTP server delivers to."""
        return self.state_dir / "mail"

    @property
    def venv_bin(self) -> Path:
        """The bin directory of the running interpreter (not resolved: a venv's python links)."""
        return Path(self.python).parent
