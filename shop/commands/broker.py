"""`shop broker`: run the local durable broker (the one `shop up` starts)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shop.broker.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PORT,
    DEFAULT_RETENTION_AGE,
    DEFAULT_RETENTION_BYTES,
    MAX_REPLAY_EVENTS,
    MAX_UNFINISHED_DELIVERIES,
    BrokerConfig,
    parse_age,
    parse_bytes,
)

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop broker` to the CLI."""
    parser = subparsers.add_parser(
        "broker",
        help="run the local broker: Knative Broker/Trigger semantics, durable in SQLite",
        description=(
            "Serve every Broker of the manifests at /<namespace>/<broker> and deliver to their "
            "Triggers with Knative's semantics; accepted events survive a crash."
        ),
    )
    parser.add_argument("--manifests", type=Path, default=Path("manifests"), help="manifest folder")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".shop"),
        help="the database goes to STATE_DIR/broker/",
    )
    parser.add_argument(
        "--endpoints",
        type=Path,
        default=None,
        help="JSON {service: URL} of the local processes (default STATE_DIR/run/endpoints.json)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="deliveries in flight per trigger (a ksvc's containerConcurrency lowers it)",
    )
    parser.add_argument(
        "--sync",
        choices=("normal", "full"),
        default="normal",
        help=(
            "SQLite's synchronous mode under WAL: normal (default) keeps every 202'd event "
            "through a crash of the process; full also through a power loss (one fsync per "
            "group commit)"
        ),
    )
    parser.add_argument(
        "--max-unfinished",
        type=int,
        default=MAX_UNFINISHED_DELIVERIES,
        help="unfinished deliveries held in memory before the ingress stops reading requests",
    )
    parser.add_argument(
        "--max-replay",
        type=int,
        default=MAX_REPLAY_EVENTS,
        metavar="N",
        help=f"the most events one replay sends; a larger range is refused ({MAX_REPLAY_EVENTS})",
    )
    parser.add_argument(
        "--retention-age",
        type=_argument(parse_age),
        default=DEFAULT_RETENTION_AGE,
        metavar="AGE",
        help=(
            "prune an event whose deliveries are all final once it is this old: seconds, or "
            "with s, m, h or d (default 1h); an unfinished event is never pruned"
        ),
    )
    parser.add_argument(
        "--retention-bytes",
        type=_argument(parse_bytes),
        default=DEFAULT_RETENTION_BYTES,
        metavar="SIZE",
        help=(
            "prune the oldest finished events while the store holds more than this: bytes, "
            "or with K, M or G (default 256M)"
        ),
    )
    parser.add_argument(
        "--oidc-issuer",
        metavar="URL",
        help=(
            "sender identity, as Knative's authentication-oidc: the OIDC issuer whose tokens "
            "the ingress accepts (its discovery document and JWKS are fetched from URL); "
            "needs --oidc-key"
        ),
    )
    parser.add_argument(
        "--oidc-key",
        type=Path,
        metavar="FILE",
        help=(
            "the issuer's private key (PEM), with which every delivery to a destination that "
            "names an audience gets its Trigger's token; needs --oidc-issuer"
        ),
    )
    parser.add_argument(
        "--rabbitmq",
        metavar="URL",
        help=(
            "the RabbitMQ (amqp://user:password@host:port/vhost) of every Broker of class "
            "RabbitMQBroker, over its RabbitmqBrokerConfig (default: the config's Secret, else "
            "amqp://guest:guest@127.0.0.1:5672/)"
        ),
    )
    parser.add_argument(
        "--no-tracing",
        dest="tracing",
        action="store_false",
        help=(
            "record none of the broker's own spans (receive, delivery attempts); the OTLP "
            "receiver at /v1/traces still takes the services' spans"
        ),
    )
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=_run, parser=parser)


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes argparse's usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _run(args: argparse.Namespace) -> int:
    from shop.broker.server import run

    if (args.oidc_issuer is None) != (args.oidc_key is None):
        args.parser.error("--oidc-issuer and --oidc-key go together (both or neither)")

    return run(
        BrokerConfig(
            manifests=args.manifests,
            state_dir=args.state_dir,
            port=args.port,
            host=args.host,
            endpoints=args.endpoints,
            concurrency=args.concurrency,
            synchronous=args.sync,
            max_unfinished_deliveries=args.max_unfinished,
            max_replay_events=args.max_replay,
            retention_age=args.retention_age,
            retention_bytes=args.retention_bytes,
            log_level=args.log_level.upper(),
            oidc_issuer=args.oidc_issuer,
            oidc_key=args.oidc_key,
            rabbitmq_url=args.rabbitmq,
            tracing=args.tracing,
        )
    )
