"""RabbitMQ names of a RabbitMQBroker's objects, as eventing-rabbitmq gives them.

Read from knative-extensions/eventing-rabbitmq `pkg/rabbitmqnaming/naming.go` and
`knative.dev/pkg/kmeta.ChildName`. In a cluster the UIDs are the objects' `metadata.uid`; a
manifest folder has none, so locally an object's UID is the UUIDv5 of `<namespace>/<name>` in a
namespace of its own kind: stable across runs (the queues outlive the broker process, as they
outlive pods) and different for a Broker and a Trigger of the same name.
"""

from __future__ import annotations

import uuid

from wire.knative.names import child_name

# uuid5(NAMESPACE_URL, ...) of the kinds' API paths: fixed namespaces for the local UIDs.
_BROKER_UIDS = uuid.uuid5(uuid.NAMESPACE_URL, "eventing.knative.dev/v1/brokers")
_TRIGGER_UIDS = uuid.uuid5(uuid.NAMESPACE_URL, "eventing.knative.dev/v1/triggers")


def broker_uid(namespace: str, name: str) -> str:
    """A Broker's local UID: uuid5 of `<namespace>/<name>`."""
    return str(uuid.uuid5(_BROKER_UIDS, f"{namespace}/{name}"))


def trigger_uid(namespace: str, name: str) -> str:
    """A Trigger's local UID: uuid5 of `<namespace>/<name>`."""
    return str(uuid.uuid5(_TRIGGER_UIDS, f"{namespace}/{name}"))


def broker_exchange(namespace: str, name: str, uid: str, *, dlx: bool = False) -> str:
    """BrokerExchangeName: `b.<ns>.<broker>.<uid>`, or `b.<ns>.<broker>.dlx.<uid>`."""
    base = f"b.{namespace}.{name}.dlx." if dlx else f"b.{namespace}.{name}."
    return child_name(base, uid)


def broker_dead_letter_queue(namespace: str, name: str, uid: str) -> str:
    """CreateBrokerDeadLetterQueueName: `b.<ns>.<broker>.dlq.<uid>`."""
    return child_name(f"b.{namespace}.{name}.dlq.", uid)


def trigger_queue(namespace: str, trigger: str, broker_uid: str) -> str:
    """CreateTriggerQueueRabbitName: `<ns>.<trigger>.<broker-uid>` (not shortened)."""
    return f"{namespace}.{trigger}.{broker_uid}"


def trigger_dead_letter_exchange(namespace: str, trigger: str, uid: str) -> str:
    """TriggerDLXExchangeName: `t.<ns>.<trigger>.dlx.<trigger-uid>`."""
    return child_name(f"t.{namespace}.{trigger}.dlx.", uid)


def trigger_dead_letter_queue(namespace: str, trigger: str, uid: str) -> str:
    """CreateTriggerDeadLetterQueueName: `t.<ns>.<trigger>.dlq.<trigger-uid>`."""
    return child_name(f"t.{namespace}.{trigger}.dlq.", uid)
