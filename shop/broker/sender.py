"""One HTTP attempt to a subscriber or a dead-letter sink, and what its answer means."""

from __future__ import annotations

from typing import NamedTuple

from shop.broker.admission import Headers, pass_through_headers
from shop.broker.http_client import HttpClient, HttpError, Response
from wire.http_binding import Mode, WireEvent, content_mode, parse_request
from wire.spec import InvalidEvent

# Knative answers this when a subscriber's 2xx body is not a CloudEvent (broker filter).
NOT_AN_EVENT_STATUS = 502


class AttemptResult(NamedTuple):
    """How one attempt ended.

    `status` is None when there was no HTTP answer (connection error, timeout); `body` is what
    the dead-letter extension `knativeerrordata` reports (the answer's body, or Knative's
    `dispatch error: ...` text). A 2xx that carried a valid event has it in `reply`. A
    NamedTuple, as `outcomes.Attempt` is, for what it costs to build one per attempt.
    """

    status: int | None
    body: bytes = b""
    error: str | None = None
    retry_after: str | None = None
    reply: WireEvent | None = None
    reply_headers: Headers = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


class Sender:
    """Posts events over pooled keep-alive connections and reads what the answers mean."""

    def __init__(self) -> None:
        self._client = HttpClient()

    async def close(self) -> None:
        self._client.close()

    async def post(
        self,
        url: str,
        headers: bytes,
        body: bytes,
        timeout: float,
        *,
        expect_reply: bool,
    ) -> AttemptResult:
        """POST once (`headers` from `encode_headers`); with `expect_reply`, a 2xx body must be
        empty or a CloudEvent (else 502)."""
        try:
            response = await self._client.post(url, headers, body, timeout)
        except HttpError as error:
            # Knative reports a transport failure as 500 with this body in the dead-letter
            # extensions.
            return AttemptResult(None, f"dispatch error: {error}".encode(), error=str(error))
        status = response.status
        if not 200 <= status < 300:
            return AttemptResult(
                status,
                response.body,
                error=f"the destination answered {status}",
                retry_after=response.header("Retry-After"),
            )
        if not expect_reply:
            return AttemptResult(status)
        return _reply(response)


def _reply(response: Response) -> AttemptResult:
    """A 2xx answer: nothing, a CloudEvent to route back into the broker, or a failure (502)."""
    status, payload = response.status, response.body
    content_type = response.header("Content-Type")
    carries_event = response.header("ce-specversion") is not None or (
        content_type is not None and _is_event_format(content_type)
    )
    if not carries_event:
        if payload:
            return AttemptResult(
                NOT_AN_EVENT_STATUS,
                payload,
                error=(
                    f"the subscriber answered {status} with a body that is not a CloudEvent; "
                    "a sink must answer with an empty body or a CloudEvent"
                ),
            )
        return AttemptResult(status)
    try:
        mode, events = parse_request(content_type, response.headers, payload)
        if mode is Mode.BATCH:
            raise InvalidEvent("a reply must be one event, not a batch")
    except InvalidEvent as error:
        return AttemptResult(
            NOT_AN_EVENT_STATUS,
            payload,
            error=f"the subscriber's reply is not a valid CloudEvent: {error.message}",
        )
    return AttemptResult(
        status, reply=events[0], reply_headers=pass_through_headers(response.headers)
    )


def _is_event_format(content_type: str) -> bool:
    try:
        return content_mode(content_type) is not Mode.BINARY
    except InvalidEvent:
        return True  # an event format we cannot read is still a (broken) event
