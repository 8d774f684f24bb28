"""Assembling and running one broker process: load, recover, serve, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shop.broker import log_output
from shop.broker.acceptance import Acceptor
from shop.broker.api import ObservabilityApi
from shop.broker.authentication import Authenticator
from shop.broker.authorization import Authorization, compile_authorization
from shop.broker.config import BrokerConfig
from shop.broker.dispatcher import DeliveryIdentity, Dispatcher
from shop.broker.http_server import HttpServer, Request, Response
from shop.broker.ingress import ALLOW, Ingress, SenderCheck
from shop.broker.journal import Journal
from shop.broker.metrics import BrokerMetrics
from shop.broker.otlp import MAX_BODY_BYTES as MAX_OTLP_BYTES
from shop.broker.otlp import PATH as OTLP_PATH
from shop.broker.otlp import OtlpReceiver
from shop.broker.outcomes import OutcomeRecorder
from shop.broker.rabbitmq.journal import RabbitJournal
from shop.broker.rabbitmq.plan import BrokerPlan, PlanError, plan_rabbitmq
from shop.broker.rabbitmq.plane import ByBrokerClass, RabbitPlane
from shop.broker.replay import Replayer, StoreResender
from shop.broker.replay_api import ReplayApi
from shop.broker.retention import Pruner, PruneStep, store_bytes
from shop.broker.routes import RouteError, Routes, build_routes, load_endpoints
from shop.broker.sender import Sender
from shop.broker.spans import TraceReader
from shop.broker.store import Checkpointer, Writer, connect, load_pending
from shop.broker.tokens import TokenMinter
from shop.broker.tracing import BrokerTracer
from shop.identity.issuer import LocalIssuer
from shop.manifests import ManifestError, Topology, load_topology
from wire.knative.filters import compile_trigger_filter
from wire.oidc.keys import IssuerSettings, KeySet

log = logging.getLogger("shop.broker")

# In-flight ingress requests get this long to finish after SIGTERM; deliveries in flight are
# cut short and simply stay pending (delivered again after the next start: at least once).
SHUTDOWN_GRACE_SECONDS = 2.0


class StartupError(Exception):
    """The broker cannot start (bad manifests, unresolvable subscriber, unusable state dir)."""


@dataclass(frozen=True)
class SenderIdentity:
    """With `--oidc-issuer`/`--oidc-key`: the issuer that mints the Triggers' tokens, and the
    compiled EventPolicies of every broker."""

    issuer: LocalIssuer
    authorization: Authorization


@dataclass(frozen=True)
class Loaded:
    """What the broker serves, read once at start."""

    routes: Routes
    identity: SenderIdentity | None = None
    #: The Brokers of class RabbitMQBroker, by `namespace/name`: served on RabbitMQ.
    rabbitmq: Mapping[str, BrokerPlan] = field(default_factory=dict)


def load(config: BrokerConfig) -> Loaded:
    """The brokers and triggers of the manifests, resolved against the runner's endpoints, and
    with sender identity on, the issuer's key and the brokers' authorization."""
    try:
        topology = load_topology(config.manifests)
        endpoints = load_endpoints(config.endpoints_file)
        routes = build_routes(
            topology, endpoints, config.base_url, compile_trigger_filter, config.concurrency
        )
        rabbitmq = plan_rabbitmq(topology, routes, config.rabbitmq_url)
    except (ManifestError, RouteError, PlanError) as error:
        raise StartupError(str(error)) from None
    if config.oidc_issuer is None or config.oidc_key is None:
        _say_identity_is_off(topology)
        return Loaded(routes, rabbitmq=rabbitmq)
    identity = _load_identity(config.oidc_issuer, config.oidc_key, topology)
    return Loaded(routes, identity, rabbitmq)


def _load_identity(issuer_url: str, key_file: Path, topology: Topology) -> SenderIdentity:
    try:
        # The key file is the issuer's (`shop up` makes it): one made here would sign tokens
        # that no published JWKS verifies.
        if not key_file.is_file():
            raise OSError(f"{key_file} does not exist")
        issuer = LocalIssuer.from_key_file(issuer_url, key_file)
    except (OSError, ValueError) as error:
        raise StartupError(f"cannot read the OIDC issuer's key (--oidc-key): {error}") from None
    authorization = compile_authorization(topology)
    for item in topology.not_ready:
        if item.kind == "EventPolicy":
            log.warning(
                "EventPolicy %s/%s is not ready and applies to nothing: %s",
                item.namespace,
                item.name,
                item.message,
            )
    for broker in authorization.brokers.values():
        log.info("sender identity: broker %s admits by %s", broker.key, broker.describe())
    return SenderIdentity(issuer, authorization)


def _say_identity_is_off(topology: Topology) -> None:
    if topology.features.oidc or topology.event_policies:
        log.warning(
            "sender identity is off (no --oidc-issuer/--oidc-key): deliveries carry no tokens, "
            "the ingress checks none, and EventPolicies are not enforced, as in Knative "
            "without authentication-oidc"
        )


@dataclass
class _Parts:
    connection: sqlite3.Connection
    writer: Writer
    checkpointer: Checkpointer
    dispatcher: Dispatcher
    sender: Sender
    server: HttpServer
    rabbit: RabbitPlane
    spans: BrokerTracer


class Backpressure:
    """Holds producers back while deliveries or commits fall behind: bounded memory, no loss.

    Above a bound the ingress waits before it takes an event (the request stays unanswered;
    once a connection has MAX_QUEUED_REQUESTS waiting, it is not read any more); below four
    fifths of the bound it takes events again. Health, metrics and the journal keep answering.
    """

    def __init__(self, config: BrokerConfig, dispatcher: Dispatcher, writer: Writer) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._writer = writer
        self._room = asyncio.Event()
        self._room.set()
        dispatcher.on_load = writer.on_load = self.check

    @property
    def overloaded(self) -> bool:
        return not self._room.is_set()

    def check(self) -> None:
        share = 0.8 if self.overloaded else 1.0
        overloaded = (
            self._dispatcher.unfinished() > self._config.max_unfinished_deliveries * share
            or self._writer.waiting > self._config.max_waiting_accepts * share
        )
        if overloaded == self.overloaded:
            return
        if overloaded:
            log.warning("overloaded: new events wait until deliveries catch up")
            self._room.clear()
        else:
            log.warning("no longer overloaded: taking new events again")
            self._room.set()

    async def room(self) -> None:
        """Return once the broker may take another event."""
        if not self._room.is_set():
            await self._room.wait()


def _assemble(config: BrokerConfig, loaded: Loaded, loop: asyncio.AbstractEventLoop) -> _Parts:
    routes = _stored_routes(loaded)
    try:
        connection = connect(config.database, config.synchronous)
        pending = load_pending(connection)
        pruner = Pruner(connection, config.retention_age, config.retention_bytes)
    except (OSError, sqlite3.Error) as error:
        raise StartupError(f"cannot open the broker store {config.database}: {error}") from None
    metrics = BrokerMetrics()
    sender = Sender()
    delivery_identity, senders = _identity_parts(config, loaded)
    # Spans go to the writer in batches: the broker's own (unless --no-tracing) and OTLP's.
    spans = BrokerTracer(lambda rows: writer.record(spans=rows))
    tracer = spans if config.tracing else None
    dispatcher = Dispatcher(
        routes, sender, metrics, config.default_attempt_timeout, delivery_identity, tracer=tracer
    )

    def pruned(step: PruneStep) -> None:
        metrics.pruned(step.by_age, step.by_size, step.seconds)

    writer = Writer(connection, loop, dispatcher.committed, pruner, pruned)
    acceptor = Acceptor(writer, metrics)
    dispatcher.start(acceptor, OutcomeRecorder(writer, metrics, tracer))
    rabbit = RabbitPlane(
        loaded.rabbitmq,
        sender,
        metrics,
        config.default_attempt_timeout,
        RabbitJournal(writer),
        identity=delivery_identity,
    )
    metrics.watch_backlog(lambda: {**dispatcher.backlog(), **rabbit.backlog()})
    metrics.watch_store(lambda: store_bytes(config.database))
    writer.start()
    checkpointer = Checkpointer(config.database)
    checkpointer.start()
    resumed = dispatcher.resume(pending)
    if resumed:
        log.info("resuming %d unfinished deliveries from %s", resumed, config.database)
    routes = loaded.routes
    api = ObservabilityApi(routes, Journal(config.database), metrics, TraceReader(config.database))
    otlp = OtlpReceiver(spans.received_spans)
    backpressure = Backpressure(config, dispatcher, writer)
    backpressure.check()
    ingress = Ingress(
        routes, ByBrokerClass(rabbit, acceptor), metrics, backpressure.room, senders, tracer=tracer
    )
    store_resender = StoreResender(writer)
    replay_api = ReplayApi(
        Replayer(
            config.database,
            routes,
            lambda broker: rabbit if rabbit.serves(broker) else store_resender,
            backpressure.room,
            config.max_replay_events,
        )
    )

    async def handle(request: Request) -> Response:
        if request.path == OTLP_PATH:  # telemetry of this machine: no sender identity asked
            return await otlp.handle(request)
        if request.method == "GET":
            response = await api.respond(request)
            if response is not None:
                return response
        elif request.path.startswith("/_shop/"):
            response = await replay_api.respond(request)
            if response is not None:
                return response
        return await ingress.handle(request)

    # Errors the server answers by itself (too large, unreadable) are the ingress's too.
    server = HttpServer(
        handle,
        config.max_event_bytes,
        error_headers=(("Allow", ALLOW),),
        body_limits={OTLP_PATH: MAX_OTLP_BYTES},
    )
    return _Parts(connection, writer, checkpointer, dispatcher, sender, server, rabbit, spans)


def _stored_routes(loaded: Loaded) -> Routes:
    """The brokers and triggers the SQLite store serves: all but the RabbitMQBrokers'."""
    routes, rabbit = loaded.routes, loaded.rabbitmq
    return Routes(
        {key: broker for key, broker in routes.brokers.items() if broker.key not in rabbit},
        {
            key: trigger
            for key, trigger in routes.triggers.items()
            if f"{trigger.namespace}/{trigger.broker}" not in rabbit
        },
    )


def _identity_parts(
    config: BrokerConfig, loaded: Loaded
) -> tuple[DeliveryIdentity | None, SenderCheck | None]:
    """Sender identity for the dispatcher (tokens, replies) and the ingress (tokens, policies)."""
    identity = loaded.identity
    if identity is None:
        return None, None
    keys = KeySet(IssuerSettings(identity.issuer.url), min_refetch=config.oidc_refetch)
    authenticator = Authenticator(keys, loaded.routes.brokers.values(), config.oidc_refetch)
    return (
        DeliveryIdentity(TokenMinter(identity.issuer), identity.authorization),
        SenderCheck(authenticator, identity.authorization),
    )


async def serve(config: BrokerConfig, loaded: Loaded, stop: asyncio.Event) -> None:
    """Run the broker until `stop` is set, then shut it down in order."""
    parts = _assemble(config, loaded, asyncio.get_running_loop())
    routes = loaded.routes
    parts.rabbit.start()
    try:
        await parts.server.start(config.host, config.port)
        log.info(
            "broker listening on %s (%s)",
            config.base_url,
            ", ".join(broker.url for broker in routes.brokers.values()) or "no brokers",
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await parts.server.stop(SHUTDOWN_GRACE_SECONDS)
        await parts.dispatcher.stop()
        await parts.rabbit.stop()
        await parts.sender.close()
        parts.spans.flush()
        parts.writer.stop()
        parts.checkpointer.stop()
        parts.connection.close()
    log.info("stopped")


def run(config: BrokerConfig) -> int:
    """Run a broker process in the foreground; the exit code (0 after SIGTERM/SIGINT)."""
    log_handler = log_output.configure(config.log_level)
    try:
        loaded = load(config)
    except StartupError as error:
        log.error("cannot start the broker: %s", error)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        flusher = asyncio.create_task(log_output.flush_forever(log_handler))
        try:
            await serve(config, loaded, stop)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    except StartupError as error:
        log.error("cannot start the broker: %s", error)
        return 2
    except OSError as error:
        log.error("cannot start the broker: %s", error)
        return 2
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (it roughly halves the cost of each request)."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop
    return None
