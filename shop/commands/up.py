"""`shop up`: run the whole topology of a manifest folder on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from shop.runner.config import (
    DEFAULT_PORT,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_STOP_GRACE,
    EnvOverride,
    UpConfig,
)
from shop.runner.console import LogEcho
from shop.runner.profile import DEFAULT_PROFILE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop up` to the CLI."""
    parser = subparsers.add_parser(
        "up",
        help="run every Knative Service, Broker and Trigger of the manifests locally",
        description=(
            "Run the Knative manifests on this machine: each Knative Service's command as a "
            "local process, the local broker for the Brokers and Triggers, and an SMTP server "
            "that keeps mail. Ctrl-C stops everything. See docs/running-locally.md."
        ),
    )
    parser.add_argument(
        "--manifests", type=Path, default=Path("manifests"), help="manifest folder (manifests/)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="the broker's port (8080); the services get the free ports after it",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".shop"),
        help="run/endpoints.json, logs/, data/, mail/ and the broker's store go here (.shop)",
    )
    parser.add_argument(
        "--env",
        dest="env_overrides",
        action="append",
        type=_env_override,
        default=[],
        metavar="SERVICE:KEY=VALUE",
        help="set a variable for one service (SERVICE * for all), over everything else; repeat",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help="the local profile that replaces cluster-only values (default: the shipped one)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        metavar="SECONDS",
        help="give up when a process does not answer /healthz within this (60)",
    )
    parser.add_argument(
        "--log-format",
        choices=[echo.value for echo in LogEcho],
        default=None,
        help=(
            "how the processes' JSON log lines are shown: human (warnings and errors, one "
            "short line each) or json (every line as written); default human on a terminal, "
            "json when piped. <state-dir>/logs/ keeps every line either way"
        ),
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=DEFAULT_STOP_GRACE,
        metavar="SECONDS",
        help="after SIGTERM, wait this long before SIGKILL (5)",
    )
    parser.add_argument(
        "--oidc",
        action="store_true",
        help=(
            "sender identity, as Knative's `authentication-oidc` feature: a local issuer, tokens "
            "on every delivery, EventPolicies at the broker (also on when the manifests' "
            "config-features ConfigMap enables it; docs/security.md)"
        ),
    )
    parser.add_argument(
        "--rabbitmq",
        metavar="URL",
        help=(
            "the RabbitMQ (amqp://user:password@host:port/vhost) of every Broker of class "
            "RabbitMQBroker, over its RabbitmqBrokerConfig (default: the config's Secret, else "
            "amqp://guest:guest@127.0.0.1:5672/; docs/broker.md)"
        ),
    )
    parser.add_argument(
        "--no-tracing",
        dest="tracing",
        action="store_false",
        help=(
            "no traces: the services get no OTEL_EXPORTER_OTLP_ENDPOINT and the broker records "
            "none of its own spans (docs/observability.md)"
        ),
    )
    parser.set_defaults(func=_run)


def _env_override(text: str) -> EnvOverride:
    try:
        return EnvOverride.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(args: argparse.Namespace) -> int:
    from shop.runner.up import default_cwd, run

    cwd = default_cwd()
    return run(
        UpConfig(
            manifests=args.manifests,
            state_dir=(cwd / args.state_dir).resolve(),
            port=args.port,
            env_overrides=tuple(args.env_overrides),
            profile=args.profile,
            ready_timeout=args.ready_timeout,
            stop_grace=args.stop_grace,
            cwd=cwd,
            oidc=args.oidc,
            rabbitmq=args.rabbitmq,
            tracing=args.tracing,
        ),
        echo=LogEcho(args.log_format) if args.log_format else None,
    )
