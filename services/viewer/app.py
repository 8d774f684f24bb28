"""The viewer service: every event the broker carries, on a web page and a small JSON API.

    GET  /                                  the page (its assets under /assets/, nothing remote)
    GET  /api/status                        the ring buffer: capacity, size, dropped, and
                                            what it was restored with from the broker's journal
    GET  /api/events?filter=&after=&limit=  buffered events, newest first, filtered
    GET  /api/stream?filter=&after=         server-sent events (resumes from Last-Event-ID)
    GET  /api/timeline?subject=             one subject's events in order, with the delays
    GET  /api/subjects                      subjects seen lately, newest first
    GET  /api/topology                      which Trigger routes what to whom, by name and
                                            in words (from the topology document, wire.topology)
    POST /api/send                          the send form: post an event to the broker
    GET|POST|DELETE /api/deadletters...     the deadletter service's API, passed through (it is
                                            cluster-local; the viewer is public)
    GET  /catalog, /asyncapi.json           the event catalog as a page and as its AsyncAPI
                                            document (services.viewer.catalog_page)
    GET  /api/catalog/types                 each catalog type with its Send tab template
                                            (services.viewer.catalog_types)
    GET  /api/deliveries?seq= | ?id=&source=  one event in the broker's journal, with every
                                            Trigger's delivery and attempt (.deliveries)
    GET  /api/traces/<trace_id>             the broker's spans of one trace (.traces)

Sending, redelivering and discarding are write actions, allowed as VIEWER_WRITE_ACTIONS says
(services.viewer.write_access); reading is open.

`filter` is a CESQL expression or a JSON/YAML object of one Trigger filter dialect, evaluated
here with the broker's own filter code (`wire.knative.filters`).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import requests
from flask import Blueprint, Flask, Response, current_app, request, send_from_directory
from prometheus_client import Gauge

from kit import KitConfig, RequestError, create_service
from kit.api import json_response
from kit.config import ConfigError
from services.viewer import catalog_page, catalog_types, deliveries, traces
from services.viewer.broker_reads import BrokerReads, install_broker_reads
from services.viewer.handlers import HISTORY, handlers
from services.viewer.history import EventHistory
from services.viewer.restore import broker_of, journal_url_for, restore_history
from services.viewer.sending import SEND_FORM
from services.viewer.stream import event_stream
from services.viewer.views import entry_json, status_json, timeline_json
from services.viewer.write_access import WriteAccess
from wire.event_form import FormError, event_from_form, post_event
from wire.knative.filters import FilterError, Predicate, compile_user_filter
from wire.oidc.sender_token import bearer_headers
from wire.spec import InvalidEvent
from wire.strings import quote
from wire.topology import TopologyError, TopologyView, parse_topology, parse_topology_text

SERVICE = "viewer"
DEFAULT_HISTORY = 1000
# Under the chart's ksvc timeoutSeconds (60): Knative ends longer requests.
DEFAULT_STREAM_SECONDS = 45.0
HEARTBEAT_SECONDS = 15.0
UPSTREAM_TIMEOUT_SECONDS = 10.0
# The most the viewer spends at start reading the broker's journal before it serves.
JOURNAL_SECONDS = 5.0
MAX_SUBJECTS = 50
STATIC = Path(__file__).with_name("static")
_EXTENSION = "shop.viewer"
N = TypeVar("N", int, float)
P = ParamSpec("P")


@dataclass(frozen=True)
class ViewerConfig:
    """Where the viewer sends and looks things up, and how much it remembers."""

    kit: KitConfig
    history: int = DEFAULT_HISTORY
    deadletter_url: str | None = None
    topology_url: str | None = None
    topology: TopologyView | None = None
    stream_seconds: float = DEFAULT_STREAM_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    upstream_timeout_seconds: float = UPSTREAM_TIMEOUT_SECONDS
    #: The broker's journal to fill the history from at start (None: start empty).
    journal_url: str | None = None
    journal_seconds: float = JOURNAL_SECONDS
    #: Who may send, redeliver and discard (VIEWER_WRITE_ACTIONS; on by default).
    write_access: WriteAccess = field(default_factory=WriteAccess)

    @property
    def broker_url(self) -> str | None:
        """Where the send form posts: K_SINK, else BROKER_URL."""
        return self.kit.sink

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ViewerConfig:
        """VIEWER_HISTORY, DEADLETTER_URL, TOPOLOGY_URL, TOPOLOGY, VIEWER_STREAM_SECONDS,
        JOURNAL_URL (default: the journal of the broker K_SINK names; `off`: none),
        VIEWER_WRITE_ACTIONS with VIEWER_WRITE_TOKEN_FILE or VIEWER_WRITE_TOKEN."""
        env = os.environ if environ is None else environ
        topology = None
        if env.get("TOPOLOGY"):
            try:
                topology = parse_topology_text(env["TOPOLOGY"])
            except TopologyError as error:
                raise ConfigError(f"TOPOLOGY: {error}") from None
        kit = KitConfig.from_env(SERVICE, env)
        journal = env.get("JOURNAL_URL") or journal_url_for(kit.sink)
        return cls(
            kit=kit,
            history=_positive(env, "VIEWER_HISTORY", DEFAULT_HISTORY, int),
            deadletter_url=env.get("DEADLETTER_URL") or None,
            topology_url=env.get("TOPOLOGY_URL") or None,
            topology=topology,
            stream_seconds=_positive(env, "VIEWER_STREAM_SECONDS", DEFAULT_STREAM_SECONDS, float),
            journal_url=None if journal == "off" else journal,
            write_access=WriteAccess.from_env(env),
        )


def _positive(env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]) -> N:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a positive number, not {quote(raw)}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number, not {quote(raw)}")
    return value


@dataclass(frozen=True)
class Viewer:
    """What the routes share: the configuration, the buffer and the stream gauge."""

    config: ViewerConfig
    history: EventHistory
    streams: Gauge


def _viewer() -> Viewer:
    viewer: Viewer = current_app.extensions[_EXTENSION]
    return viewer


routes = Blueprint("viewer", __name__, static_folder="static", static_url_path="/assets")


def write_action(route: Callable[P, Response]) -> Callable[P, Response]:
    """A route that changes something: answered only when the viewer's write access allows it."""

    @functools.wraps(route)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        access = _viewer().config.write_access
        refusal = access.refusal(request.headers.get("Authorization"))
        return refusal if refusal is not None else route(*args, **kwargs)

    return guarded


@routes.get("/")
def page() -> Response:
    """The single page; everything it loads comes from /assets/."""
    response = send_from_directory(STATIC, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get("/api/status")
def show_status() -> Response:
    """The buffer's state, which collaborators are configured and whether writes are allowed."""
    viewer = _viewer()
    config = viewer.config
    return json_response(
        200,
        {
            **status_json(viewer.history.status()),
            "broker": config.broker_url,
            "deadletter": config.deadletter_url,
            "topology": "url" if config.topology_url else ("env" if config.topology else None),
            "write_actions": config.write_access.mode.value,
        },
    )


@routes.get("/api/events")
def list_events() -> Response:
    """Buffered events after `after`, newest first, at most `limit`, that match `filter`."""
    viewer = _viewer()
    matches = _filter(request.args.get("filter"))
    after = _integer("after", 0)
    limit = _integer("limit", viewer.config.history)
    status = viewer.history.status()
    entries = [e for e in viewer.history.after(after) if matches(e.event.attributes)]
    newest = [entry_json(entry) for entry in reversed(entries[-limit:] if limit else [])]
    return json_response(200, {"events": newest, **status_json(status)})


@routes.get("/api/stream")
def stream_events() -> Response:
    """Server-sent events from `Last-Event-ID` (or `after`, else now) on, filtered."""
    viewer = _viewer()
    matches = _filter(request.args.get("filter"))
    resume = request.headers.get("Last-Event-ID")
    if resume is not None and resume.isdigit():
        after = int(resume)
    else:
        after = _integer("after", viewer.history.status().last_seq)
    config = viewer.config

    def messages() -> Any:
        viewer.streams.inc()
        try:
            yield from event_stream(
                viewer.history,
                matches,
                after,
                lifetime=config.stream_seconds,
                heartbeat=config.heartbeat_seconds,
            )
        finally:
            viewer.streams.dec()

    return Response(
        messages(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@routes.get("/api/timeline")
def show_timeline() -> Response:
    """Every buffered event with `subject`, in the order they arrived."""
    subject = request.args.get("subject", "").strip()
    if not subject:
        raise RequestError(400, "subject is required, e.g. ?subject=<order id>", "subject")
    return json_response(200, timeline_json(subject, _viewer().history.with_subject(subject)))


@routes.get("/api/subjects")
def list_subjects() -> Response:
    """Subjects of buffered events, the most recently seen first, with their event counts."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in reversed(_viewer().history.entries()):
        subject = entry.event.get("subject")
        if subject is None:
            continue
        if subject not in seen:
            if len(seen) == MAX_SUBJECTS:
                continue
            seen[subject] = {"subject": subject, "count": 0, "last_type": entry.event.type}
        seen[subject]["count"] += 1
    return json_response(200, {"subjects": list(seen.values())})


@routes.get("/api/topology")
def show_topology() -> Response:
    """The topology from TOPOLOGY_URL (fetched now) or TOPOLOGY; empty when neither is set."""
    config = _viewer().config
    if config.topology_url:
        document = _fetch_json(config.topology_url, "the topology")
        try:
            view = parse_topology(document)
        except TopologyError as error:
            raise RequestError(502, f"{config.topology_url}: {error}") from None
        return json_response(200, {**view.to_json(), "source": config.topology_url})
    if config.topology is not None:
        return json_response(200, {**config.topology.to_json(), "source": "TOPOLOGY"})
    return json_response(200, {"brokers": [], "triggers": [], "source": None})


@routes.post("/api/send")
@write_action
def send_event() -> Response:
    """Post the form's event to the broker: 200 when accepted, 502 with its answer when not."""
    config = _viewer().config
    form = SEND_FORM.parse()
    try:
        event = event_from_form(form)
    except FormError as error:
        raise RequestError(400, error.message, error.field) from None
    except InvalidEvent as error:
        raise RequestError(400, error.message, error.attribute) from None
    if config.broker_url is None:
        raise RequestError(503, "the viewer has no broker to send to: set K_SINK or BROKER_URL")
    structured = form.get("mode") == "structured"
    try:
        result = post_event(
            config.broker_url,
            event,
            structured=structured,
            timeout=config.upstream_timeout_seconds,
            headers=bearer_headers(config.kit.sender_token_file),
        )
    except requests.RequestException as error:
        raise RequestError(
            502, f"the broker at {config.broker_url} did not answer: {error}"
        ) from None
    body = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "mode": "structured" if structured else "binary",
        "status": result.status,
        "response": result.body[:2000],
    }
    if result.accepted:
        return json_response(200, body)
    refusal = f"the broker refused the event with {result.status}: {result.body.strip()[:300]}"
    return json_response(502, {"error": refusal, **body})


@routes.get("/api/deadletters")
def list_dead_letters() -> Response:
    return _deadletter("GET", "/deadletters", dict(request.args))


@routes.get("/api/deadletters/summary")
def summarise_dead_letters() -> Response:
    return _deadletter("GET", "/deadletters/summary")


@routes.get("/api/deadletters/<int:dead_letter_id>")
def show_dead_letter(dead_letter_id: int) -> Response:
    return _deadletter("GET", f"/deadletters/{dead_letter_id}")


@routes.post("/api/deadletters/<int:dead_letter_id>/redeliver")
@write_action
def redeliver_dead_letter(dead_letter_id: int) -> Response:
    """Optional body `{"to": "subscriber"|"broker"}`, checked by the deadletter service."""
    path = f"/deadletters/{dead_letter_id}/redeliver"
    return _deadletter("POST", path, body=_forwarded_body())


@routes.post("/api/deadletters/redeliver")
@write_action
def redeliver_matching_dead_letters() -> Response:
    """Body `{"filter": EXPR, "to": ..., "dry_run": bool}`, as the deadletter service takes it."""
    return _deadletter("POST", "/deadletters/redeliver", body=_forwarded_body())


def _forwarded_body() -> tuple[bytes, str] | None:
    data = request.get_data(cache=True)
    return (data, request.content_type or "application/json") if data else None


@routes.delete("/api/deadletters/<int:dead_letter_id>")
@write_action
def delete_dead_letter(dead_letter_id: int) -> Response:
    return _deadletter("DELETE", f"/deadletters/{dead_letter_id}")


def _deadletter(
    method: str,
    path: str,
    params: Mapping[str, str] | None = None,
    body: tuple[bytes, str] | None = None,
) -> Response:
    """The deadletter service's answer to the same request (`body`: data and Content-Type),
    passed through unchanged."""
    config = _viewer().config
    if not config.deadletter_url:
        raise RequestError(
            503, "the viewer does not know the deadletter service: set DEADLETTER_URL"
        )
    url = config.deadletter_url.rstrip("/") + path
    try:
        answer = requests.request(
            method,
            url,
            params=params,
            data=None if body is None else body[0],
            headers=None if body is None else {"Content-Type": body[1]},
            timeout=config.upstream_timeout_seconds,
        )
    except requests.RequestException as error:
        raise RequestError(
            502, f"the deadletter service at {config.deadletter_url} did not answer: {error}"
        ) from None
    return Response(
        answer.content,
        status=answer.status_code,
        content_type=answer.headers.get("Content-Type", "application/json"),
    )


def _fetch_json(url: str, what: str) -> Any:
    try:
        answer = requests.get(url, timeout=_viewer().config.upstream_timeout_seconds)
        answer.raise_for_status()
        return answer.json()
    except (requests.RequestException, ValueError) as error:
        raise RequestError(502, f"cannot read {what} from {url}: {error}") from None


def _filter(text: str | None) -> Predicate:
    if text is None or not text.strip():
        return _everything
    try:
        return compile_user_filter(text)
    except FilterError as error:
        raise RequestError(400, str(error), "filter") from None


def _everything(event: Any) -> bool:
    return True


def _integer(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise RequestError(400, f"{name} must be a whole number, not {quote(raw)}", name)
    return int(raw)


def create_app(config: ViewerConfig | None = None) -> Flask:
    """The viewer's WSGI app: `gunicorn "services.viewer.app:create_app()"`.

    It keeps its history in memory, so it must run as one worker process (WEB_CONCURRENCY=1,
    the default); each open stream holds one of its threads (GUNICORN_THREADS).
    """
    config = config or ViewerConfig.from_env()
    history = EventHistory(config.history)
    service = create_service(
        SERVICE, handlers, config=config.kit, stateless=True, resources={HISTORY: history}
    )
    registry = service.metrics.registry
    dropped = Gauge(
        "shop_viewer_history_dropped",
        "Old events the viewer's ring buffer dropped to make room",
        registry=registry,
    )
    dropped.set_function(lambda: float(history.status().dropped))
    size = Gauge("shop_viewer_history_size", "Events in the ring buffer now", registry=registry)
    size.set_function(lambda: float(history.status().size))
    streams = Gauge("shop_viewer_streams", "Open server-sent event streams", registry=registry)
    service.app.extensions[_EXTENSION] = Viewer(config, history, streams)
    service.app.register_blueprint(routes)
    reads = BrokerReads(
        config.journal_url, broker_of(config.broker_url), config.upstream_timeout_seconds
    )
    install_broker_reads(service.app, reads)
    for blueprint in (deliveries.routes, traces.routes, catalog_types.routes, catalog_page.routes):
        service.app.register_blueprint(blueprint)
    _end_streams_on_sigterm(history)
    started = service.start()
    if config.journal_url is not None:
        # Before the first request: the Trigger's deliveries then come after what it restored.
        restore_history(
            history,
            config.journal_url,
            broker=broker_of(config.broker_url),
            seconds=config.journal_seconds,
        )
    return started.app


def _end_streams_on_sigterm(history: EventHistory) -> None:
    """When the server stops gracefully on SIGTERM (gunicorn's worker does), end streams first.

    A graceful stop waits for the requests in flight, and an open stream is one for up to its
    lifetime: Knative scaling the viewer down would wait for it, and `shop up` would have to
    kill it. Closing the history ends every stream at once; browsers reconnect by themselves.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    graceful = signal.getsignal(signal.SIGTERM)
    if not callable(graceful):
        return  # the default action or ignored: no graceful stop to go first

    def end_streams_then_stop(signum: int, frame: Any) -> None:
        history.close()
        graceful(signum, frame)

    signal.signal(signal.SIGTERM, end_streams_then_stop)
