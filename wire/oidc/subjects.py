"""The names Knative gives to senders and receivers of events, and the `sub` patterns of policies.

A Trigger, a SinkBinding or a Broker sends with a ServiceAccount Knative makes for it; its token's
subject is that account's full name. A receiver is known by an audience: a Broker's is fixed by
Knative, a Knative Service's is whatever the Trigger says in `subscriber.audience`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wire.knative.names import child_name

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount"
TRIGGER_SUFFIX = "-oidc-eventing.knative.dev-Trigger"
SINK_BINDING_SUFFIX = "-oidc-sources.knative.dev-SinkBinding"


def service_account_subject(namespace: str, account: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}:{namespace}:{account}"


def oidc_account(name: str, suffix: str) -> str:
    """The ServiceAccount Knative makes for a resource (`GetOIDCServiceAccountNameForResource`)."""
    return child_name(name, suffix).lower()


def trigger_subject(namespace: str, trigger: str) -> str:
    """Who a Trigger's deliveries (to its subscriber, dead-letter sink and replies) come from."""
    return service_account_subject(namespace, oidc_account(trigger, TRIGGER_SUFFIX))


def sink_binding_subject(namespace: str, sink_binding: str) -> str:
    """Who a SinkBinding's subject sends as (the token Knative mounts at /oidc/token)."""
    return service_account_subject(namespace, oidc_account(sink_binding, SINK_BINDING_SUFFIX))


def resource_subject(namespace: str, group: str, kind: str, name: str) -> str:
    """Who any other resource with an OIDC identity sends as (a PingSource, an ApiServerSource):
    `GetOIDCServiceAccountNameForResource`, `<name>-oidc-<group>-<Kind>` lowercased."""
    return service_account_subject(namespace, oidc_account(name, f"-oidc-{group}-{kind}"))


def broker_audience(namespace: str, broker: str) -> str:
    return f"eventing.knative.dev/broker/{namespace}/{broker}"


def same_namespace(subject: str, namespace: str) -> bool:
    """Whether `subject` is a ServiceAccount of `namespace` (the Allow-Same-Namespace mode)."""
    return subject.startswith(f"{SERVICE_ACCOUNT_PREFIX}:{namespace}:")


@dataclass(frozen=True)
class SubjectPattern:
    """An EventPolicy `sub`: an exact subject (case-insensitive) or a prefix ending in `*`."""

    text: str

    def matches(self, subject: str) -> bool:
        if self.text.endswith("*"):
            return subject.startswith(self.text[:-1])
        return self.text.lower() == subject.lower()


def parse_patterns(raw: str | Iterable[str]) -> tuple[SubjectPattern, ...]:
    """Patterns from a comma-separated string (an environment variable) or a list."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(SubjectPattern(item.strip()) for item in items if item.strip())


def any_matches(patterns: Iterable[SubjectPattern], subject: str) -> bool:
    return any(pattern.matches(subject) for pattern in patterns)
