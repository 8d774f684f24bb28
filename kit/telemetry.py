"""Traces: the kit's spans, recorded with the OpenTelemetry SDK and exported over OTLP/HTTP.

Off (no endpoint configured, `KitConfig.tracing` None), nothing is installed: the SDK is not
even imported, and every span below is one shared no-op context manager. On, `start()` builds
the SDK's provider, batch processor and exporter, and traces the service's database engine. It
runs in the gunicorn worker after the fork (the batch processor's thread does not survive one).

The spans, named and described as OpenTelemetry's messaging and CloudEvents conventions say:

- `process <type>` (consumer), one per event received, child of the broker's delivery span
  (the request's `traceparent` header) when that continues the event's trace, else of the
  event's `traceparent` extension;
- `<handler>` (internal), the handler's call, parent of the database work it does;
- `create <type>` (producer), one per event emitted (an outbox write or the reply), whose
  context is the emitted event's `traceparent`;
- `send <type>` (client), one per post of the outbox relay, child of that producer span (the
  broker's receive span of the event, a child of its `traceparent`, is its sibling);
- `POST /orders` (server), one per request to a JSON route (opentelemetry-instrumentation-flask);
- each database statement (client) inside one of those (opentelemetry-instrumentation-sqlalchemy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from kit.config import TracingConfig
from kit.outgoing import Message
from kit.tracing import DELIVERY_TRACEPARENT, consumer_parent, format_traceparent
from wire.http_binding import HEADER_PREFIX, WireEvent, decode_header_value
from wire.spec import InvalidEvent

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

    from kit.endpoint import WsgiApp

log = logging.getLogger("shop.kit.telemetry")

#: `messaging.system`: the events travel through a Knative Broker (locally, `shop up`'s).
MESSAGING_SYSTEM = "knative"
_TRACER_NAME = "kit"
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SPAN: AbstractContextManager[Any] = nullcontext(trace.INVALID_SPAN)
# Flask routes that are probed, not used: no span for them.
_UNTRACED_ROUTES = "/healthz$,/readyz$,/metrics$"


class Telemetry:
    """A service's tracer: the SDK's when tracing is configured and started, else no spans."""

    def __init__(self, config: TracingConfig | None) -> None:
        self.config = config
        self._provider: SdkTracerProvider | None = None
        self._tracer: trace.Tracer | None = None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start(self, engine: sa.Engine | None) -> None:
        """Install the SDK (once) and trace `engine`'s statements; nothing when tracing is off."""
        if self.config is None or self._provider is not None:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(
            sampler=_sampler(self.config),
            resource=Resource.create({"service.name": self.config.service_name}),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(self.config.endpoint)))
        self._provider = provider
        self._tracer = provider.get_tracer(_TRACER_NAME)
        if engine is not None:
            _trace_statements(engine, _InsideSpans(provider))
        log.info(
            "exporting traces",
            extra={"endpoint": self.config.endpoint, "sampler": self.config.sampler},
        )

    def trace_routes(self, app: Flask, routes: WsgiApp) -> WsgiApp:
        """`routes` (the Flask app behind the kit's `POST /`) with a server span per request."""
        if self._provider is None:
            return routes
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        # The instrumentation wraps `app.wsgi_app`; the kit's endpoint sits in front of that,
        # so that `POST /` (which has its consumer span) skips the wrapper.
        outer = app.wsgi_app
        app.wsgi_app = routes  # type: ignore[method-assign, assignment]
        try:
            FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
                app,
                tracer_provider=self._provider,
                meter_provider=NoOpMeterProvider(),
                excluded_urls=_UNTRACED_ROUTES,
                enable_commenter=False,
            )
            traced: WsgiApp = app.wsgi_app
        finally:
            app.wsgi_app = outer  # type: ignore[method-assign]
        return traced

    def shutdown(self) -> None:
        """Export what is still queued, then stop the exporter (worker exit, `Service.close`)."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            provider.shutdown()

    # -- the kit's spans --------------------------------------------------------------------

    def consuming(self, event: WireEvent) -> AbstractContextManager[Span]:
        """The consumer span of a received event: child of the broker's delivery span (the
        request's `traceparent` header) when that continues the event's trace, else of the
        event's `traceparent` (none: a root)."""
        if self._tracer is None:
            return _NO_SPAN
        return self._tracer.start_as_current_span(
            f"process {event.type}",
            context=parent_context(
                consumer_parent(event.get("traceparent"), DELIVERY_TRACEPARENT.get())
            ),
            kind=SpanKind.CONSUMER,
            attributes={**_operation("process"), **event_attributes(event)},
        )

    def handling(self, handler: Callable[..., Any]) -> AbstractContextManager[Span]:
        """The span of a handler's call."""
        if self._tracer is None:
            return _NO_SPAN
        name = getattr(handler, "__qualname__", type(handler).__qualname__)
        return self._tracer.start_as_current_span(
            name,
            kind=SpanKind.INTERNAL,
            attributes={"code.function.name": f"{handler.__module__}.{name}"},
        )

    def producing(self, event_type: str, parent: str | None) -> AbstractContextManager[str | None]:
        """The producer span of an event about to be built; yields the `traceparent` the event
        carries (None when tracing is off: the caller makes one, kit.tracing.child_traceparent).

        Its parent is the current span, else `parent` (work resumed outside the request that
        caused it, such as the mail sender's, carries the traceparent it stored)."""
        if self._tracer is None:
            return nullcontext(None)
        return self._producer_span(self._tracer, event_type, parent)

    @staticmethod
    @contextmanager
    def _producer_span(tracer: trace.Tracer, event_type: str, parent: str | None) -> Iterator[str]:
        current = trace.get_current_span().get_span_context().is_valid
        with tracer.start_as_current_span(
            f"create {event_type}",
            context=None if current else parent_context(parent),
            kind=SpanKind.PRODUCER,
            attributes=_operation("create"),
        ) as span:
            context = span.get_span_context()
            yield format_traceparent(context.trace_id, context.span_id, context.trace_flags)

    def describe(self, event: WireEvent) -> None:
        """Name `event` on the current span (the producer span it was built in)."""
        if self._tracer is not None:
            trace.get_current_span().set_attributes(event_attributes(event))

    def sending(self, message: Message, url: str) -> AbstractContextManager[Span]:
        """The client span of the relay's post of a stored event, child of its producer span."""
        if self._tracer is None:
            return _NO_SPAN
        attributes = _message_attributes(message.headers)
        return self._tracer.start_as_current_span(
            f"send {attributes.get('cloudevents.event_type', '')}".rstrip(),
            context=parent_context(message.headers.get(f"{HEADER_PREFIX}traceparent")),
            kind=SpanKind.CLIENT,
            attributes={
                **_operation("send"),
                **attributes,
                "http.request.method": "POST",
                "url.full": url,
            },
            record_exception=False,
            set_status_on_exception=False,
        )


def record_response(span: Span, status: int | None, error: str | None) -> None:
    """What a post answered: its status, and the error unless it was accepted."""
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error.type", str(status) if status is not None else "no answer")
        span.set_status(Status(StatusCode.ERROR, error))


def parent_context(traceparent: str | None) -> Context:
    """The context a valid `traceparent` names; an empty one (a new trace) for any other."""
    if not traceparent:
        return Context()
    return _PROPAGATOR.extract({"traceparent": traceparent})


def event_attributes(event: WireEvent) -> dict[str, AttributeValue]:
    """The CloudEvents conventions' attributes of an event."""
    # Not messaging.message.id nor cloudevents.event_spec_version: the one repeats the id, the
    # other is always 1.0, and each attribute costs the exporter's encoder a few microseconds.
    attributes: dict[str, AttributeValue] = {
        "cloudevents.event_id": event.id,
        "cloudevents.event_source": event.source,
        "cloudevents.event_type": event.type,
    }
    subject = event.get("subject")
    if subject:
        attributes["cloudevents.event_subject"] = subject
    return attributes


def _message_attributes(headers: Mapping[str, str]) -> dict[str, AttributeValue]:
    """`event_attributes` of a stored binary-mode message, from its `ce-` headers."""
    attributes: dict[str, str | int | bool] = {"id": "", "source": "", "type": ""}
    for name in ("id", "source", "type", "subject"):
        raw = headers.get(f"{HEADER_PREFIX}{name}")
        if raw is not None:
            try:
                attributes[name] = decode_header_value(raw, name)
            except InvalidEvent:  # the kit encoded it: not expected, and only a label here
                attributes[name] = raw
    return event_attributes(WireEvent(attributes))


def _operation(name: str) -> dict[str, AttributeValue]:
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": name,
        "messaging.operation.name": name,
    }


def _sampler(config: TracingConfig) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(config.sampler_ratio)
    samplers: dict[str, Sampler] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(ratio),
    }
    return samplers[config.sampler]


def _trace_statements(engine: sa.Engine, provider: trace.TracerProvider) -> None:
    """A client span per statement `engine` runs, by the SQLAlchemy instrumentation's listener.

    The listener for one engine, not `SQLAlchemyInstrumentor().instrument()`: that patches
    `create_engine` process-wide, once per process, and refuses SQLAlchemy 2.1 by its pin."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import NoOpMeterProvider

    usage = NoOpMeterProvider().get_meter(_TRACER_NAME).create_up_down_counter("unused")
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]


class _InsideSpans(trace.TracerProvider):
    """Tracers whose spans are recorded only inside another span: the database work of an
    event or a route, not the polls of background threads (the relay's, the lease's, a
    service's own worker), each of which would be a trace of its own every second."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _InsideSpansTracer(self._provider.get_tracer(*args, **kwargs))


class _InsideSpansTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, *args, **kwargs)

    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> AbstractContextManager[Span]:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return _NO_SPAN
        return self._tracer.start_as_current_span(name, context, *args, **kwargs)
