"""Knative's delivery rules: which spec applies, what is retried, how long to wait, dead letters.

Every rule here is read from knative/eventing's core implementation (the multi-tenant
channel-based broker), cited where it matters:

- `pkg/apis/duck/v1/delivery_types.go`: the DeliverySpec fields and their admission checks;
- `pkg/reconciler/broker/trigger/trigger.go`: which delivery a trigger gets;
- `pkg/kncloudevents/retries.go`: retry table, back-off formula, Retry-After;
- `pkg/kncloudevents/event_dispatcher.go`: the dead-letter extensions.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, cast

from wire.knative.destination import Destination
from wire.knative.durations import DurationError, parse_duration
from wire.knative.errors import FieldError
from wire.knative.http_date import parse_http_date

BackoffPolicy = Literal["linear", "exponential"]
DeliveryFormat = Literal["json", "binary"]

BACKOFF_POLICIES: tuple[BackoffPolicy, ...] = ("linear", "exponential")
DELIVERY_FORMATS: tuple[DeliveryFormat, ...] = ("json", "binary")
DEAD_LETTER_DATA_MAX_LENGTH = 1024  # attributes.KnativeErrorDataExtensionMaxLength
_INT32_MAX = 2**31 - 1
_DELAY_SECONDS = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class DeliverySpec:
    """A Broker's or Trigger's `spec.delivery`, durations already in seconds.

    None means the field is absent. A spec with `backoff_delay` but no `backoff_policy` retries
    back to back: Knative's RetryConfigFromDeliverySpec sets a back-off only when both are given.
    """

    retry: int | None = None
    backoff_policy: BackoffPolicy | None = None
    backoff_delay: float | None = None
    timeout: float | None = None
    dead_letter_sink: Destination | None = None
    retry_after_max: float | None = None
    format: DeliveryFormat | None = None

    @classmethod
    def from_manifest(cls, obj: object, path: str) -> DeliverySpec:
        """Read and admit a `delivery:` mapping as DeliverySpec.Validate would.

        Raises FieldError naming the field (`<path>.backoffDelay`, ...). Unknown fields are
        refused too: the API server would reject them, and a misspelt `backoffdelay` would
        otherwise silently mean "no back-off". `timeout` and `retryAfterMax` are admitted as
        if their feature flags (delivery-timeout, delivery-retryafter) were on.
        """
        if not isinstance(obj, Mapping):
            raise FieldError(path, f"expected an object, not {type(obj).__name__}")
        for key in obj:
            if key not in _FIELDS:
                raise FieldError(f"{path}.{key}", f"unknown field (known: {', '.join(_FIELDS)})")
        dead_letter_sink = obj.get("deadLetterSink")
        return cls(
            retry=_retry(obj.get("retry"), f"{path}.retry"),
            backoff_policy=cast(
                "BackoffPolicy | None",
                _choice(obj.get("backoffPolicy"), BACKOFF_POLICIES, f"{path}.backoffPolicy"),
            ),
            backoff_delay=_duration(obj.get("backoffDelay"), f"{path}.backoffDelay"),
            timeout=_timeout(obj.get("timeout"), f"{path}.timeout"),
            dead_letter_sink=(
                None
                if dead_letter_sink is None
                else Destination.from_manifest(dead_letter_sink, f"{path}.deadLetterSink")
            ),
            retry_after_max=_duration(obj.get("retryAfterMax"), f"{path}.retryAfterMax"),
            format=cast(
                "DeliveryFormat | None",
                _choice(obj.get("format"), DELIVERY_FORMATS, f"{path}.format"),
            ),
        )


_FIELDS = (
    "retry",
    "backoffPolicy",
    "backoffDelay",
    "timeout",
    "deadLetterSink",
    "retryAfterMax",
    "format",
)

# config-br-defaults as Knative ships it; BrokerSpec.SetDefaults copies it into a Broker
# that has no spec.delivery (pkg/apis/eventing/v1/broker_defaults.go).
CLUSTER_DEFAULT_DELIVERY = DeliverySpec(retry=10, backoff_policy="exponential", backoff_delay=0.2)


def effective_delivery(trigger: DeliverySpec | None, broker: DeliverySpec | None) -> DeliverySpec:
    """The delivery a trigger's events get, from the trigger's and its broker's `spec.delivery`.

    `subscribeToBrokerChannel` takes the trigger's delivery whole when it has one, the broker's
    otherwise: a trigger that sets only `deadLetterSink` gets no retries. `resolveDeadLetterSink`
    falls back to the broker's dead-letter sink when the trigger names none. A broker without
    `spec.delivery` has the cluster default (retry 10, exponential, PT0.2S).
    """
    broker_delivery = CLUSTER_DEFAULT_DELIVERY if broker is None else broker
    if trigger is None:
        return broker_delivery
    if trigger.dead_letter_sink is None and broker_delivery.dead_letter_sink is not None:
        return replace(trigger, dead_letter_sink=broker_delivery.dead_letter_sink)
    return trigger


def is_retryable(status: int | None) -> bool:
    """Whether Knative retries a delivery that ended with `status` (None: no response at all).

    kncloudevents.SelectiveRetry: transport errors and timeouts, 5xx, 404, 408, 409 and 429.
    Every other status (2xx included) is final.
    """
    if status is None:
        return True
    return status >= 500 or status in (404, 408, 409, 429)


def backoff_delay(spec: DeliverySpec, retry_number: int) -> float:
    """Seconds to wait before retry `retry_number` (1 for the first retry) by the back-off alone.

    Knative's core counts attempts from 0 (retryablehttp passes attemptNum = retry - 1):
    linear `delay * (n - 1)`, so the first retry is immediate; exponential `delay * 2^(n - 1)`.
    No policy or no delay: 0. There is no cap.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number counts from 1, got {retry_number}")
    if spec.backoff_delay is None or spec.backoff_policy is None:
        return 0.0
    attempt = retry_number - 1
    if spec.backoff_policy == "linear":
        return spec.backoff_delay * attempt
    return spec.backoff_delay * 2.0**attempt


def retry_after_seconds(header_value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delay-seconds or HTTP-date), None if unusable.

    Like Knative's parseRetryAfterDuration: an integer is seconds, otherwise an HTTP-date as
    Go's http.ParseTime reads it, counted from `now` (timezone-aware). A date in the past or a
    negative number asks for no wait (0.0).
    """
    if header_value is None:
        return None
    text = header_value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(max(int(text), 0))
    when = parse_http_date(text)
    if when is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def next_wait(
    spec: DeliverySpec,
    retry_number: int,
    status: int | None,
    retry_after_header: str | None,
    now: datetime,
) -> float:
    """Seconds to wait before retry `retry_number`, honouring Retry-After as Knative does.

    generateBackoffFn: only for 429 and 503, and only when `retryAfterMax` is set (the
    delivery-retryafter feature is opt-in), wait = max(back-off, min(Retry-After, retryAfterMax)).
    `retryAfterMax: PT0S` therefore ignores Retry-After.
    """
    wait = backoff_delay(spec, retry_number)
    if spec.retry_after_max is None or status not in (429, 503):
        return wait
    asked = retry_after_seconds(retry_after_header, now)
    if asked is None:
        return wait
    return max(wait, min(asked, spec.retry_after_max))


def dead_letter_extensions(destination_url: str, status: int | None, body: bytes) -> dict[str, str]:
    """The extensions Knative adds to an event it sends to a dead-letter sink.

    dispatchExecutionInfoTransformers: `knativeerrordest` is the URL that failed,
    `knativeerrorcode` the last HTTP status (500 when there was no response), and
    `knativeerrordata` the standard base64 of the last response body, the encoded string cut at
    1024 characters. An empty body gives an empty `knativeerrordata` (present, not omitted).
    For a transport error Knative's body is `dispatch error: <error>`; pass that as `body`.
    Knative types `knativeerrorcode` as an integer extension; it is given here as its text.
    """
    encoded = base64.b64encode(body)[:DEAD_LETTER_DATA_MAX_LENGTH].decode("ascii")
    return {
        "knativeerrordest": destination_url,
        "knativeerrorcode": str(500 if status is None else status),
        "knativeerrordata": encoded,
    }


def add_dead_letter_extensions(
    attributes: Mapping[str, str | int | bool], extensions: Mapping[str, str]
) -> dict[str, str | int | bool]:
    """The event's attributes with the dead-letter extensions added where not already set.

    Knative adds them with the CloudEvents SDK's transformer.AddExtension, which keeps a value
    the event already carries unless it is empty (an event dead-lettered twice keeps the first
    failure's extensions).
    """
    merged = dict(attributes)
    for name, value in extensions.items():
        if merged.get(name) in (None, "", 0):
            merged[name] = value
    return merged


def _retry(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, f"expected an integer, not {value!r}")
    if value < 0:
        raise FieldError(path, f"invalid value {value}: must not be negative")
    if value > _INT32_MAX:
        raise FieldError(path, f"invalid value {value}: must fit a 32-bit integer")
    return value


def _choice(value: object, choices: tuple[str, ...], path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise FieldError(path, f"invalid value {value!r}: expected one of {', '.join(choices)}")
    return value


def _duration(value: object, path: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as error:
        raise FieldError(path, f"invalid ISO-8601 duration: {error}") from None


def _timeout(value: object, path: str) -> float | None:
    seconds = _duration(value, path)
    if seconds == 0:
        raise FieldError(path, f"invalid value {value!r}: the timeout must be greater than 0")
    return seconds
