# checkov runs in its own virtual environment (.tools/checkov); mypy sees it as missing.
# mypy: allow-subclassing-any, disable-error-code="import-not-found"
"""Project checkov checks for Knative objects, which checkov's own checks do not look inside.

Loaded with `checkov --external-checks-dir tests/chart/checkov_checks` (see test_checkov.py).
checkov's container checks read `spec.template.spec` of Deployments, Jobs and Pods only: a
privileged, root Knative Service passes them, and Brokers and Triggers get no checks at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check

SAFE_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _group(conf: dict[str, Any]) -> str:
    return str(conf.get("apiVersion", "")).rpartition("/")[0]


def _pod_spec(conf: dict[str, Any]) -> dict[str, Any]:
    spec = conf.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    return pod if isinstance(pod, dict) else {}


def _containers(
    conf: dict[str, Any], keys: tuple[str, ...] = ("initContainers", "containers")
) -> Iterator[dict[str, Any]]:
    pod = _pod_spec(conf)
    for key in keys:
        for container in pod.get(key) or []:
            if isinstance(container, dict):
                yield container


class KnativeServiceCheck(BaseK8Check):
    """A check of every container of a Knative Service (serving.knative.dev/v1 Service)."""

    #: The pod spec's lists of containers the check looks at.
    container_lists: tuple[str, ...] = ("initContainers", "containers")

    def __init__(self, name: str, check_id: str) -> None:
        super().__init__(
            name=name,
            id=check_id,
            categories=[CheckCategories.KUBERNETES],
            supported_entities=["Service"],
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        if _group(conf) != "serving.knative.dev":
            return CheckResult.UNKNOWN  # a core Service: nothing runs in it
        containers = list(_containers(conf, self.container_lists))
        if not containers:
            return CheckResult.FAILED
        pod = _pod_spec(conf)
        ok = all(self.container_passes(container, pod) for container in containers)
        return CheckResult.PASSED if ok else CheckResult.FAILED

    def container_passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        raise NotImplementedError


class KnativeServiceRestricted(KnativeServiceCheck):
    """The restricted pod security profile, set on each container (Knative gates the pod's)."""

    def __init__(self) -> None:
        super().__init__(
            "Knative Service containers run non-root, read-only, without privileges or "
            "capabilities, with a seccomp profile",
            "CKV_SHOP_1",
        )

    def container_passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        context = container.get("securityContext") or {}
        pod_context = pod.get("securityContext") or {}
        capabilities = context.get("capabilities") or {}
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        run_as_user = context.get("runAsUser", pod_context.get("runAsUser"))
        return (
            run_as_non_root is True
            and run_as_user != 0
            and context.get("allowPrivilegeEscalation") is False
            and context.get("privileged") is not True
            and context.get("readOnlyRootFilesystem") is True
            and "ALL" in (capabilities.get("drop") or [])
            and not capabilities.get("add")
            and seccomp.get("type") in SAFE_SECCOMP_TYPES
        )


class KnativeServiceResources(KnativeServiceCheck):
    """CPU and memory requests and limits, so the autoscaler and the scheduler can plan."""

    def __init__(self) -> None:
        super().__init__(
            "Knative Service containers set CPU and memory requests and limits", "CKV_SHOP_2"
        )

    def container_passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        resources = container.get("resources") or {}
        return all(
            (resources.get(kind) or {}).get(resource) not in (None, "")
            for kind in ("requests", "limits")
            for resource in ("cpu", "memory")
        )


class KnativeServiceProbes(KnativeServiceCheck):
    """Readiness and liveness probes on the serving container."""

    # Kubernetes refuses probes on init containers: they run to completion before any serving.
    container_lists = ("containers",)

    def __init__(self) -> None:
        super().__init__(
            "Knative Service containers have readiness and liveness probes", "CKV_SHOP_3"
        )

    def container_passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        if not container.get("ports") and len(pod.get("containers") or []) > 1:
            return True  # a sidecar: Knative probes only the serving container
        return bool(container.get("readinessProbe")) and bool(container.get("livenessProbe"))


class BrokerDeadLetterSink(BaseK8Check):
    """A Broker whose failed deliveries go somewhere rather than being dropped."""

    def __init__(self) -> None:
        super().__init__(
            name="Brokers have a dead-letter sink",
            id="CKV_SHOP_4",
            categories=[CheckCategories.KUBERNETES],
            supported_entities=["Broker"],
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        if _group(conf) != "eventing.knative.dev":
            return CheckResult.UNKNOWN
        delivery = (conf.get("spec") or {}).get("delivery") or {}
        sink = delivery.get("deadLetterSink") or {}
        return CheckResult.PASSED if sink.get("ref") or sink.get("uri") else CheckResult.FAILED


class TriggerFilter(BaseK8Check):
    """A Trigger with a filter: an unfiltered one sends a replying subscriber its own replies."""

    def __init__(self) -> None:
        super().__init__(
            name="Triggers filter the events they deliver",
            id="CKV_SHOP_5",
            categories=[CheckCategories.KUBERNETES],
            supported_entities=["Trigger"],
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        if _group(conf) != "eventing.knative.dev":
            return CheckResult.UNKNOWN
        spec = conf.get("spec") or {}
        attributes = (spec.get("filter") or {}).get("attributes")
        return CheckResult.PASSED if spec.get("filters") or attributes else CheckResult.FAILED


checks = [
    KnativeServiceRestricted(),
    KnativeServiceResources(),
    KnativeServiceProbes(),
    BrokerDeadLetterSink(),
    TriggerFilter(),
]
