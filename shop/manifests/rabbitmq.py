"""RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1), the config a RabbitMQBroker names.

Admitted by its CRD schema (`eventing.knative.dev_rabbitmqbrokerconfig_v1alpha1`: no unknown
fields, `queueType` quorum or classic, default quorum) and its webhook
(eventing-rabbitmq `pkg/apis/eventing/v1alpha1/rabbitmq_validation.go`: the cluster reference
is `name` or `connectionSecret`, not both, and one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shop.manifests.fields import Fields
from shop.manifests.objects import ManifestObject, Metadata

QueueType = Literal["quorum", "classic"]
QUEUE_TYPES: tuple[QueueType, ...] = ("quorum", "classic")
_SPEC_FIELDS = frozenset({"vhost", "queueType", "rabbitmqClusterReference"})
_REFERENCE_FIELDS = frozenset({"name", "namespace", "connectionSecret"})


@dataclass(frozen=True, kw_only=True)
class RabbitmqBrokerConfig(ManifestObject):
    """Where a RabbitMQBroker's RabbitMQ is (a RabbitmqCluster's name, or a Secret) and how its
    queues are made."""

    vhost: str | None = None
    queue_type: QueueType = "quorum"
    cluster_name: str | None = None
    cluster_namespace: str | None = None
    connection_secret: str | None = None


def read_rabbitmq_broker_config(meta: Metadata) -> RabbitmqBrokerConfig:
    """Admit a RabbitmqBrokerConfig as its schema and webhook would."""
    spec = meta.root.mapping("spec")
    _no_unknown(spec, _SPEC_FIELDS)
    queue_type = spec.text("queueType") or "quorum"
    if queue_type not in QUEUE_TYPES:
        raise spec.error("queueType", f"{queue_type!r} must be quorum or classic")
    reference = spec.mapping("rabbitmqClusterReference")
    _no_unknown(reference, _REFERENCE_FIELDS)
    secret = reference.mapping("connectionSecret")
    _no_unknown(secret, frozenset({"name"}))
    name, secret_name = reference.text("name"), secret.text("name")
    if bool(name) == bool(secret_name):
        raise reference.error(
            None, "set either name or connectionSecret.name (the RabbitMQ cluster), not both"
        )
    return RabbitmqBrokerConfig(
        **meta.common(),
        vhost=spec.text("vhost"),
        queue_type="classic" if queue_type == "classic" else "quorum",
        cluster_name=name,
        cluster_namespace=reference.text("namespace"),
        connection_secret=secret_name,
    )


def _no_unknown(fields: Fields, allowed: frozenset[str]) -> None:
    for key in fields.values:
        if key not in allowed:
            raise fields.error(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")
