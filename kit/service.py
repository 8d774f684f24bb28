"""A CloudEvents service: handlers by event type, once-only handling, outbox, health and metrics."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

import sqlalchemy as sa
from cloudevents.core.v1.event import CloudEvent
from flask import Flask, Response, current_app, g, has_app_context, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from kit import idempotency, outbox
from kit.api import json_response
from kit.config import KitConfig
from kit.database import READ_ONLY, create_engine
from kit.endpoint import EVENTS_RULE, EventEndpoint
from kit.errors import RequestError, RetryLater
from kit.idempotency import ACCEPTED, Answer, Outcome
from kit.incoming import decode_data, to_cloudevent
from kit.logs import OutcomeLog, configure_logging
from kit.metrics import KitMetrics
from kit.migrations import KIT_HISTORY
from kit.migrations.runner import History, upgrade, verify
from kit.openapi import serve_openapi
from kit.outgoing import Message, NewEvent, build_event, to_message
from kit.relay import OutboxRelay, RelaySettings
from kit.schemas import EMPTY_REGISTRY, DataError, SchemaRegistry
from kit.sender_identity import SenderCheck
from kit.telemetry import Telemetry
from kit.tracing import child_traceparent
from kit.unavailable import database_error_response, retry_later_response
from wire.http_binding import WireEvent
from wire.limits import body_too_large
from wire.spec import InvalidEvent

log = logging.getLogger("shop.kit")

Handler: TypeAlias = Callable[[CloudEvent, "Transaction"], NewEvent | None]
_CLAIM_ATTEMPTS = 3
# The attribute of flask.g holding the request's transaction (Service.request_transaction).
_REQUEST_TRANSACTION = "shop_kit_transaction"
T = TypeVar("T")


@dataclass(frozen=True)
class ResourceKey(Generic[T]):
    """The typed name of a collaborator a service hands its handlers (a card processor, a mailer).

    `create_service(..., resources={KEY: value})` stores it; `tx.resource(KEY)` returns it typed.
    """

    name: str


class HandlerSet:
    """The event handlers of a service, one per event type, declared with `@handlers.on(type)`.

    An event is handled once per (source, id). A handler registered with `key_attributes` is
    handled once per (source, id, those attributes): the dead-letter sink, for instance, gets the
    same event once per trigger that failed it, told apart by `knativeerrordest`.
    """

    def __init__(self) -> None:
        self.by_type: dict[str, Handler] = {}
        self.fallback: Handler | None = None
        self._key_attributes: dict[str | None, tuple[str, ...]] = {}
        self.fallback_takes_raw_data = False

    def on(
        self, event_type: str, *, key_attributes: Sequence[str] = ()
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if event_type in self.by_type:
                raise ValueError(f"a handler for {event_type!r} is registered already")
            self.by_type[event_type] = handler
            self._key_attributes[event_type] = tuple(key_attributes)
            return handler

        return register

    def on_any(
        self, *, key_attributes: Sequence[str] = (), raw_data: bool = False
    ) -> Callable[[Handler], Handler]:
        """Register the handler for every type that has no handler of its own.

        With `raw_data`, the handler gets the data as the bytes that arrived, neither parsed nor
        checked against a schema: a sink that must keep whatever it is sent (dead letters) can.
        """

        def register(handler: Handler) -> Handler:
            self.fallback = handler
            self._key_attributes[None] = tuple(key_attributes)
            self.fallback_takes_raw_data = raw_data
            return handler

        return register

    def find(self, event_type: str) -> Handler | None:
        return self.by_type.get(event_type, self.fallback)

    def once_key(self, event: WireEvent) -> str:
        """What, besides `source`, makes an event the same event for once-only handling."""
        names = self._key_attributes.get(event.type if event.type in self.by_type else None, ())
        if not names:
            return event.id
        return "\x1f".join([event.id, *(event.get(name) or "" for name in names)])


class Transaction:
    """One database transaction of a handler or a route, and the events it emits."""

    def __init__(
        self,
        service: Service,
        connection: sa.Connection | None,
        traceparent: str | None,
        received: WireEvent | None = None,
    ) -> None:
        self._service = service
        self._connection = connection
        self.traceparent = traceparent
        self.emitted = 0
        #: The event being handled exactly as it arrived (None in an HTTP route).
        self.received = received
        self._after_commit: list[Callable[[], None]] = []

    @property
    def connection(self) -> sa.Connection:
        if self._connection is None:
            raise RuntimeError(f"service {self._service.name!r} is stateless: it has no database")
        return self._connection

    def resource(self, key: ResourceKey[T]) -> T:
        """The collaborator the service was created with under `key`."""
        return self._service.resource(key)

    def build(self, new: NewEvent, traceparent: str | None = None) -> WireEvent:
        """The event `new` as this service sends it (source, schema, trace context: the
        `traceparent` given, else a new span of this transaction's trace)."""
        return build_event(
            new,
            source=self._service.config.source,
            schemas=self._service.schemas,
            traceparent=traceparent or child_traceparent(self.traceparent),
            partition_by_subject=self._service.partition_by_subject,
        )

    def emit(self, new: NewEvent) -> str:
        """Send `new` through the outbox once this transaction commits; returns its id."""
        telemetry = self._service.telemetry
        with telemetry.producing(new.type, self.traceparent) as traceparent:
            event = self.build(new, traceparent)
            telemetry.describe(event)
            outbox.enqueue(self.connection, event.id, event.type, to_message(event))
        self.emitted += 1
        return event.id

    def reply(self, new: NewEvent) -> Message:
        """`new` as the HTTP answer to the event being handled."""
        telemetry = self._service.telemetry
        with telemetry.producing(new.type, self.traceparent) as traceparent:
            event = self.build(new, traceparent)
            telemetry.describe(event)
            return to_message(event)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this transaction has committed, never if it rolls back (to wake
        a service's own worker for what the transaction stored, as the relay is woken)."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Run the after-commit callbacks; the kit calls it once the commit succeeded."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


class Service:
    """A Flask app that receives CloudEvents on `POST /` and hands them to its handlers.

    Constructing one has no side effects; `start()` (called by each service's app factory, in
    the gunicorn worker after the fork) configures logging, migrates the tables and starts the
    outbox relay.

    A service's tables come from its Alembic history (`migrations`, whose metadata they are);
    `metadata` without a history is for a test's app, whose tables are created as they are.
    """

    def __init__(
        self,
        config: KitConfig,
        handlers: HandlerSet,
        *,
        schemas: SchemaRegistry = EMPTY_REGISTRY,
        metadata: sa.MetaData | None = None,
        migrations: History | None = None,
        stateless: bool = False,
        resources: Mapping[ResourceKey[Any], object] | None = None,
        partition_by_subject: bool = False,
    ) -> None:
        if metadata is not None and migrations is not None:
            raise ValueError("a service with a migration history has the history's metadata")
        self.config = config
        self.name = config.service
        self.handlers = handlers
        self.schemas = schemas
        #: Every event it sends carries its subject as `partitionkey` too (kit/outgoing.py).
        self.partition_by_subject = partition_by_subject
        self._resources: dict[ResourceKey[Any], object] = dict(resources or {})
        self._metadata = metadata
        self._migrations = migrations
        self.engine = (
            None
            if stateless
            else create_engine(config.database_url, wait_seconds=config.database_wait_seconds)
        )
        self.metrics = KitMetrics(self._backlog)
        self.telemetry = Telemetry(config.tracing)
        self.outcomes = OutcomeLog(log)
        self.senders = (
            None
            if config.sender_identity is None
            else SenderCheck(config.sender_identity, self.metrics)
        )
        self.relay: OutboxRelay | None = None
        if self.engine is not None and config.relay_enabled:
            settings = RelaySettings(
                config.sink,
                config.ce_overrides,
                config.relay_poll_seconds,
                token_file=config.sender_token_file,
            )
            self.relay = OutboxRelay(self.engine, settings, self.metrics, self.telemetry)
        self.app = self._create_flask_app()
        self._started = False
        self._closers: list[Callable[[], None]] = []

    @property
    def max_event_bytes(self) -> int:
        return self.config.max_event_bytes

    def handles(self, event_type: str) -> bool:
        """Whether an event of this type has a handler (its own, or the catch-all)."""
        return event_type in self.handlers.by_type or self.handlers.fallback is not None

    def start(self) -> Service:
        """Configure logging and traces, migrate the tables, start the relay; once, however
        often called."""
        if self._started:
            return self
        self._started = True
        configure_logging(self.config.log_level)
        atexit.register(self.outcomes.close)
        self.telemetry.start(self.engine)
        self._endpoint.routes = self.telemetry.trace_routes(self.app, self._endpoint.routes)
        # atexit runs last what it was given first: the relay stops before the spans are flushed.
        atexit.register(self.telemetry.shutdown)
        if self.engine is not None:
            self._migrate(self.engine)
        if self.relay is not None:
            self.relay.start()
            atexit.register(self.relay.stop)
        return self

    def _migrate(self, engine: sa.Engine) -> None:
        """Bring the kit's tables and the service's to the code's head, kit first (or, with
        MIGRATE_AT_START=0, fail unless someone did: the chart's init container)."""
        histories = [KIT_HISTORY, *([self._migrations] if self._migrations is not None else [])]
        if not self.config.migrate_at_start:
            verify(engine, histories)
            return
        unversioned = [self._metadata] if self._metadata is not None else []
        upgrade(engine, histories, unversioned=unversioned)

    def resource(self, key: ResourceKey[T]) -> T:
        """The collaborator this service was created with under `key` (routes and handlers)."""
        try:
            return cast(T, self._resources[key])
        except KeyError:
            raise RuntimeError(
                f"service {self.name!r} was created without the resource {key.name!r}"
            ) from None

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self, traceparent: str | None = None) -> Iterator[Transaction]:
        """A transaction for a route's business change and the events it emits (outbox).

        Inside `request_transaction()` it is that transaction, which commits when the outer
        block ends: what wraps the route (kit/idempotent_routes.py) and the route's own change
        commit together or not at all.
        """
        joined = g.get(_REQUEST_TRANSACTION) if has_app_context() else None
        if joined is not None:
            yield joined
            return
        if traceparent is None and request:
            traceparent = request.headers.get("traceparent")
        if self.engine is None:
            yield Transaction(self, None, traceparent)
            return
        with self.engine.begin() as connection:
            tx = Transaction(self, connection, traceparent)
            yield tx
        tx.committed()
        if tx.emitted and self.relay is not None:
            self.relay.wake()

    @contextmanager
    def request_transaction(self) -> Iterator[Transaction]:
        """The one transaction of the current request: `transaction()` in the route joins it."""
        with self.transaction() as tx:
            if g.get(_REQUEST_TRANSACTION) is tx:
                yield tx
                return
            setattr(g, _REQUEST_TRANSACTION, tx)
            try:
                yield tx
            finally:
                delattr(g, _REQUEST_TRANSACTION)

    # -- handling events ----------------------------------------------------------------------

    def handle(self, wire: WireEvent, *, in_batch: bool = False) -> Outcome:
        """Handle one validated event once, however often it arrives; raise to refuse it."""
        with self.telemetry.consuming(wire) as span:
            outcome = self._handle(wire, in_batch)
            if outcome.duplicate:
                span.set_attribute("shop.event.duplicate", True)
            return outcome

    def _handle(self, wire: WireEvent, in_batch: bool) -> Outcome:
        handler = self.handlers.find(wire.type)
        if handler is None:
            raise InvalidEvent(
                f"service {self.name!r} has no handler for event type {wire.type!r}",
                attribute="type",
            )
        if self.handlers.fallback_takes_raw_data and wire.type not in self.handlers.by_type:
            data: Any = wire.data
        else:
            data = decode_data(wire)
            try:
                self.schemas.validate(wire.type, data)
            except DataError as error:
                raise InvalidEvent(str(error), attribute="data") from error
        event = to_cloudevent(wire, data)
        traceparent = wire.get("traceparent")
        if self.engine is None:
            tx = Transaction(self, None, traceparent, wire)
            return Outcome(self._answer(self._call(handler, event, tx), tx, in_batch))
        key = self.handlers.once_key(wire)
        for _ in range(_CLAIM_ATTEMPTS):
            with self.engine.begin() as connection:
                if idempotency.claim(connection, wire.source, key, wire.type):
                    tx = Transaction(self, connection, traceparent, wire)
                    answer = self._answer(self._call(handler, event, tx), tx, in_batch)
                    idempotency.record(connection, wire.source, key, answer)
                    claimed = True
                else:
                    claimed = False
            if claimed:
                tx.committed()
                if tx.emitted and self.relay is not None:
                    self.relay.wake()
                return Outcome(answer)
            with self.engine.connect() as connection:
                previous = idempotency.find_answer(connection, wire.source, key)
            if previous is not None:
                return Outcome(previous, duplicate=True)
        raise RetryLater("the same event is being handled concurrently", retry_after_seconds=1)

    def _call(self, handler: Handler, event: CloudEvent, tx: Transaction) -> NewEvent | None:
        with self.telemetry.handling(handler):
            return handler(event, tx)

    def _answer(self, result: NewEvent | None, tx: Transaction, in_batch: bool) -> Answer:
        """202 for nothing to send; 200 with the reply, serialised once so duplicates get it too."""
        if result is None:
            return ACCEPTED
        if in_batch:
            # One HTTP response cannot carry a reply per batch entry: send those via the outbox.
            tx.emit(result)
            return ACCEPTED
        return Answer(200, tx.reply(result))

    # -- HTTP ---------------------------------------------------------------------------------

    def _create_flask_app(self) -> Flask:
        app = Flask(f"services.{self.name}")
        app.config["MAX_CONTENT_LENGTH"] = self.config.max_event_bytes
        app.extensions["shop.kit"] = self
        # EventEndpoint answers POST / before Flask routes anything; the rule is there so that
        # Flask answers OPTIONS / (the webhook handshake) and 405 to other methods on /.
        app.add_url_rule("/", EVENTS_RULE, _answered_by_event_endpoint, methods=["POST"])
        self._endpoint = EventEndpoint(self, app.wsgi_app, self.senders)
        app.wsgi_app = self._endpoint  # type: ignore[method-assign]
        app.add_url_rule("/healthz", "healthz", self._healthz)
        app.add_url_rule("/readyz", "readyz", self._readyz)
        app.add_url_rule("/metrics", "metrics", self._metrics)
        app.add_url_rule("/openapi.json", "openapi", serve_openapi)
        app.register_error_handler(HTTPException, _http_error)
        app.register_error_handler(RequestError, _request_error)
        app.register_error_handler(RetryLater, retry_later_response)
        app.register_error_handler(sa.exc.SQLAlchemyError, database_error_response)
        app.after_request(_no_type_without_body)
        app.after_request(_webhook_handshake)
        return app

    def _healthz(self) -> Response:
        return json_response(200, {"status": "ok", "service": self.name})

    def _readyz(self) -> Response:
        if self.engine is None:
            return json_response(200, {"status": "ready"})
        try:
            # Read-only: a writer holding SQLite's lock makes the service busy (503 on writes,
            # retried), not unready; an unreachable PostgreSQL makes it unready.
            with self.engine.connect() as connection:
                connection.execution_options(**READ_ONLY).execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            return json_response(503, {"status": "not ready", "error": str(error)})
        return json_response(200, {"status": "ready"})

    def _metrics(self) -> Response:
        return Response(self.metrics.exposition(), mimetype="text/plain; version=0.0.4")

    def _backlog(self) -> float:
        if self.engine is None:
            return 0.0
        with self.engine.connect() as connection:
            return float(outbox.backlog(connection.execution_options(**READ_ONLY)))

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` first when the service closes (a service's own worker stops with it)."""
        self._closers.append(callback)

    def close(self) -> None:
        """Stop the relay, export the last spans and release database connections (tests,
        shutdown)."""
        for callback in self._closers:
            callback()
        self.outcomes.close()
        if self.relay is not None:
            self.relay.stop()
        self.telemetry.shutdown()
        if self.engine is not None:
            self.engine.dispose()


def _answered_by_event_endpoint() -> Response:
    raise RuntimeError("POST / is answered by EventEndpoint, in front of Flask")


def current_service() -> Service:
    """The Service of the Flask app handling the current request."""
    service: Service = current_app.extensions["shop.kit"]
    return service


def _http_error(error: HTTPException) -> Response:
    body: dict[str, Any] = {"error": error.description}
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        breach = body_too_large(limit)
        body = {"error": breach.message, "limit": breach.limit}
    response = json_response(error.code or 500, body)
    if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return response


def _webhook_handshake(response: Response) -> Response:
    """OPTIONS / is the CloudEvents webhook validation handshake (HTTP 1.1 Web Hooks for Event
    Delivery, section 4): any origin may deliver here, at any rate, as at the broker."""
    if request.method == "OPTIONS" and request.path == "/" and response.status_code == 200:
        response.headers["WebHook-Allowed-Origin"] = "*"
        response.headers["WebHook-Allowed-Rate"] = "*"
    return response


def _no_type_without_body(response: Response) -> Response:
    """Flask labels its empty answers (OPTIONS, HEAD) as HTML; an empty body has no type."""
    if (
        response.mimetype == "text/html"
        and not response.is_streamed
        and not response.direct_passthrough
        and response.get_data() == b""
    ):
        del response.headers["Content-Type"]
    return response


def _request_error(error: RequestError) -> Response:
    return json_response(error.status, error.to_json())
