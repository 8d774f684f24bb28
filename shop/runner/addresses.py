"""Where each Broker and Knative Service is reached under `shop up`, and Destinations resolved."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shop.manifests import Service, Topology
from shop.manifests.topology import BROKER_API_VERSION, KSVC_API_VERSION
from wire.knative import Destination, KReference

LOCAL_HOST = "127.0.0.1"
# The multi-tenant broker's in-cluster ingress, `/<namespace>/<broker>` below it.
BROKER_INGRESS_HOST = "broker-ingress.knative-eventing.svc.cluster.local"
_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")
_MAX_PORT = 65535


class NoFreePort(Exception):
    """No port is left for a service."""


def ports_after(base: int, count: int, taken: set[int]) -> list[int]:
    """`count` ports after `base` that nobody listens on now, skipping `taken` and `base`.

    The services get the ports following the broker's (8081, 8082 ... in manifest order) so
    that their URLs stay the same from one run to the next; a busy port is skipped.
    """
    ports: list[int] = []
    candidate = base
    while len(ports) < count:
        candidate += 1
        if candidate > _MAX_PORT:
            raise NoFreePort(f"no free ports left after {base} for {count} services")
        if candidate in taken:
            continue
        with socket.socket() as probe:
            # As servers bind (gunicorn, http.server): a port in TIME_WAIT is free to them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOCAL_HOST, candidate))
            except OSError:
                continue
        ports.append(candidate)
    return ports


@dataclass(frozen=True)
class LocalAddresses:
    """The local broker's base URL and each Knative Service's port (keyed by namespace, name)."""

    broker_base: str
    service_ports: Mapping[tuple[str, str], int]

    def broker_url(self, namespace: str, name: str) -> str:
        """A Broker's ingress: `http://127.0.0.1:<port>/<namespace>/<name>`."""
        return f"{self.broker_base}/{namespace}/{name}"

    def service_url(self, namespace: str, name: str) -> str:
        """A Knative Service's local base URL."""
        return f"http://{LOCAL_HOST}:{self.service_ports[(namespace, name)]}"

    def url_of(self, service: Service) -> str:
        return self.service_url(service.namespace, service.name)

    def resolve(self, topology: Topology, destination: Destination, namespace: str) -> str | None:
        """A Destination's local URL, or None when it names nothing `shop up` runs.

        As Knative's resolver does: a ref's address with a relative `uri` resolved against it
        (RFC 3986), or the absolute `uri` alone.
        """

        def address_of(ref: KReference, target: str) -> str | None:
            kind = (ref.api_version, ref.kind)
            if kind == (BROKER_API_VERSION, "Broker") and topology.broker(target, ref.name):
                return self.broker_url(target, ref.name)
            if kind == (KSVC_API_VERSION, "Service") and (target, ref.name) in self.service_ports:
                return self.service_url(target, ref.name)
            return None

        return destination.resolve(namespace, address_of)

    def localise(self, value: str) -> str:
        """A cluster address in `value` turned into the local one; anything else unchanged.

        `http://<service>.<namespace>.svc.cluster.local/path` (or `.svc`) of a Knative Service
        `shop up` runs becomes its local URL with the same path, and the broker ingress becomes
        the local broker's: a manifest written for the cluster then works on a laptop.
        """
        if not value.startswith(("http://", "https://")):
            return value
        parts = urlsplit(value)
        host = parts.hostname or ""
        if host == BROKER_INGRESS_HOST:
            return self.broker_base + parts.path + (f"?{parts.query}" if parts.query else "")
        for suffix in _CLUSTER_SUFFIXES:
            if host.endswith(suffix):
                name, _, namespace = host[: -len(suffix)].partition(".")
                if (namespace, name) in self.service_ports:
                    local = urlsplit(self.service_url(namespace, name))
                    return urlunsplit(
                        (local.scheme, local.netloc, parts.path, parts.query, parts.fragment)
                    )
        return value
