"""Who may send an event to a broker: its EventPolicies, else the default authorization mode.

Compiled once at start from the manifests, evaluated per request as Knative's verifier does
(`pkg/auth/verifier.go`, `pkg/auth/event_policy.go`):
- the ready EventPolicies that apply to the Broker, by name; if there are any, the sender is
  allowed when its subject matches a `from` of one of them and the event passes that policy's
  filters. Knative's `SubjectAndFiltersPass` lets the first policy whose `from` matches decide:
  when its filters refuse the event, a later policy that would allow it is not asked;
- with none, `default-authorization-mode`: Allow-All, Deny-All, or Allow-Same-Namespace (the
  subject must be a ServiceAccount of the Broker's namespace).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shop.manifests import AuthorizationMode, Topology
from wire.knative.filters import compile_filters
from wire.oidc.subjects import SubjectPattern, any_matches, parse_patterns, same_namespace
from wire.spec import AttributeValue

log = logging.getLogger("shop.broker.authorization")

Attributes = Mapping[str, AttributeValue]
Predicate = Callable[[Attributes], bool]


@dataclass(frozen=True)
class PolicyRule:
    """One applying EventPolicy: the subjects it allows and the filter their events must pass."""

    name: str
    patterns: tuple[SubjectPattern, ...]
    passes: Predicate


@dataclass(frozen=True)
class BrokerAuthorization:
    """The compiled authorization of one broker."""

    namespace: str
    name: str
    mode: AuthorizationMode
    rules: tuple[PolicyRule, ...]

    def refusal(self, subject: str, attributes: Attributes) -> str | None:
        """Why `subject` may not send this event here; None when it may."""
        if self.rules:
            for rule in self.rules:
                if any_matches(rule.patterns, subject):
                    if self._passes(rule, attributes):
                        return None
                    return (
                        f"subject {subject!r} may send to broker {self.key} only events that "
                        f"pass the filters of EventPolicy {rule.name}, and this one does not"
                    )
            names = ", ".join(rule.name for rule in self.rules)
            return (
                f"subject {subject!r} is not allowed by any EventPolicy of broker {self.key} "
                f"({names})"
            )
        if self.mode == "Deny-All":
            return (
                f"no EventPolicy allows subject {subject!r}: none applies to broker {self.key}, "
                "and default-authorization-mode is Deny-All"
            )
        if self.mode == "Allow-Same-Namespace" and not same_namespace(subject, self.namespace):
            return (
                f"no EventPolicy allows subject {subject!r}: none applies to broker {self.key}, "
                "and default-authorization-mode Allow-Same-Namespace admits only "
                f"ServiceAccounts of namespace {self.namespace!r}"
            )
        return None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def describe(self) -> str:
        """How the broker authorizes, for the start-up log."""
        if self.rules:
            return "EventPolicies " + ", ".join(rule.name for rule in self.rules)
        return f"no EventPolicy applies, default-authorization-mode {self.mode}"

    def _passes(self, rule: PolicyRule, attributes: Attributes) -> bool:
        try:
            return rule.passes(attributes)
        except Exception:
            # As a Trigger's filter: one that breaks on an event does not let it through.
            log.exception(
                "the filters of EventPolicy %s/%s failed on an event; refused",
                self.namespace,
                rule.name,
            )
            return False


@dataclass(frozen=True)
class Authorization:
    """Every broker's authorization, by `namespace/name`."""

    brokers: Mapping[str, BrokerAuthorization]

    def refusal(self, broker: str, subject: str, attributes: Attributes) -> str | None:
        return self.brokers[broker].refusal(subject, attributes)

    def reply_refusal(
        self, broker: str, trigger: str, subject: str, attributes: Attributes
    ) -> str | None:
        """Why a reply from a subscriber of `trigger` may not enter `broker`, logged; None when
        it may. It is authorized as if the Trigger (`subject`) had sent it: Knative's broker
        filter posts it to the ingress with the Trigger's token."""
        reason = self.refusal(broker, subject, attributes)
        if reason is not None:
            why = f"the reply of a subscriber of {trigger}: {reason}"
            log_refusal(broker, 403, why, attributes, subject)
        return reason


def compile_authorization(topology: Topology) -> Authorization:
    """Compile the policies of every Broker of the manifests (filters admitted already)."""
    mode = topology.features.default_authorization_mode
    brokers = {}
    for broker in topology.brokers:
        rules = tuple(
            PolicyRule(
                policy.name,
                parse_patterns(topology.senders_of(policy)),
                compile_filters(policy.filters),
            )
            for policy in topology.event_policies_for(broker)
        )
        compiled = BrokerAuthorization(broker.namespace, broker.name, mode, rules)
        brokers[compiled.key] = compiled
    return Authorization(brokers)


def log_refusal(
    broker: str,
    status: int,
    reason: str,
    attributes: Attributes | None,
    subject: str | None = None,
) -> None:
    """The WARNING line of a refused sender: why, who (never the token) and which event."""
    event = attributes or {}
    log.warning(
        "broker %s refused an event (%d): %s",
        broker,
        status,
        reason,
        extra={
            "status": status,
            "sender": subject,
            "event_id": event.get("id"),
            "type": event.get("type"),
            "source": event.get("source"),
        },
    )
