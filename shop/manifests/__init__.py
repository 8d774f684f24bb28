"""Reading Knative manifests and admitting them as Knative's webhooks would, for `shop up`."""

from shop.manifests.core import ConfigMap, Secret
from shop.manifests.environment import expand_references
from shop.manifests.errors import ManifestError
from shop.manifests.eventing import Broker, EventAttribute, EventType, Trigger
from shop.manifests.features import AuthorizationMode, Features
from shop.manifests.fields import Origin
from shop.manifests.objects import DEFAULT_NAMESPACE, ManifestObject
from shop.manifests.policies import EventPolicy, LabelSelector, PolicySource, PolicyTarget
from shop.manifests.serving import EnvFrom, EnvVar, KeyRef, Service
from shop.manifests.sources import LabelRequirement, SinkBinding, Subject
from shop.manifests.topology import Ignored, NotReady, Topology, load_topology

__all__ = [
    "DEFAULT_NAMESPACE",
    "AuthorizationMode",
    "Broker",
    "ConfigMap",
    "EnvFrom",
    "EnvVar",
    "EventAttribute",
    "EventPolicy",
    "EventType",
    "Features",
    "Ignored",
    "KeyRef",
    "LabelRequirement",
    "LabelSelector",
    "ManifestError",
    "ManifestObject",
    "NotReady",
    "Origin",
    "PolicySource",
    "PolicyTarget",
    "Secret",
    "Service",
    "SinkBinding",
    "Subject",
    "Topology",
    "Trigger",
    "expand_references",
    "load_topology",
]
