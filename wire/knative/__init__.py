"""Knative's delivery semantics as pure functions, for the local broker, the runner and tests."""

from wire.knative.delivery import (
    CLUSTER_DEFAULT_DELIVERY,
    BackoffPolicy,
    DeliveryFormat,
    DeliverySpec,
    add_dead_letter_extensions,
    backoff_delay,
    dead_letter_extensions,
    effective_delivery,
    is_retryable,
    next_wait,
    retry_after_seconds,
)
from wire.knative.destination import Destination, KReference
from wire.knative.durations import DurationError, parse_duration
from wire.knative.errors import FieldError

__all__ = [
    "CLUSTER_DEFAULT_DELIVERY",
    "BackoffPolicy",
    "DeliveryFormat",
    "DeliverySpec",
    "Destination",
    "DurationError",
    "FieldError",
    "KReference",
    "add_dead_letter_extensions",
    "backoff_delay",
    "dead_letter_extensions",
    "effective_delivery",
    "is_retryable",
    "next_wait",
    "parse_duration",
    "retry_after_seconds",
]
