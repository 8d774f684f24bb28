"""Sender identity under `shop up`: the local issuer, the SinkBindings' token files, and what the
processes are told about them.

With Knative's `authentication-oidc` feature on (`--oidc`, or a `config-features` ConfigMap in the
manifests saying `authentication-oidc: enabled`) the cluster's API server is the issuer; here it
is `shop up`: its key lives in `<state-dir>/oidc/`, it serves the discovery document and JWKS on
127.0.0.1, the broker mints the Triggers' tokens with the same key, and each SinkBinding's subject
gets a token file as Knative mounts at `/oidc/token`, kept fresh by `shop up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from shop.identity.issuer import DEFAULT_LIFETIME_SECONDS, LocalIssuer
from shop.identity.server import IssuerServer
from shop.identity.token_files import TokenFile, write_token
from shop.manifests import Service, Topology
from shop.runner.console import Console
from wire.oidc.subjects import broker_audience, sink_binding_subject

NAME = "oidc"
# What a pod's manifest may say about reaching the cluster's issuer, which means nothing here.
CLUSTER_ONLY = ("OIDC_DISCOVERY_URL", "OIDC_CA_FILE", "OIDC_DISCOVERY_TOKEN_FILE")
BROKER_KIND = ("eventing.knative.dev/v1", "Broker")


class IdentityError(ValueError):
    """Manifests that ask services to verify senders while sender identity is off."""


@dataclass(frozen=True)
class LocalIdentity:
    """The issuer of one run and the token file of every SinkBinding subject that gets one."""

    url: str
    key_file: Path
    token_files: Mapping[tuple[str, str], TokenFile]
    lifetime: float = DEFAULT_LIFETIME_SECONDS

    def environment(self, service: Service, env: MutableMapping[str, str]) -> None:
        """Point a service's verification at the local issuer and give it its token file."""
        if env.get("OIDC_AUDIENCE"):
            env["OIDC_ISSUER"] = self.url
            for key in CLUSTER_ONLY:
                env.pop(key, None)
        token_file = self.token_files.get((service.namespace, service.name))
        if token_file is not None:
            env["OIDC_TOKEN_FILE"] = str(token_file.path)

    def broker_arguments(self) -> tuple[str, ...]:
        return ("--oidc-issuer", self.url, "--oidc-key", str(self.key_file))


def oidc_requested(topology: Topology, switch: bool) -> bool:
    """`--oidc`, or the manifests' `config-features` turning `authentication-oidc` on."""
    return switch or topology.features.oidc


def plan_identity(topology: Topology, state_dir: Path, sock: socket.socket) -> LocalIdentity:
    """The issuer at `sock`'s address, and a token file per SinkBinding whose sink is a Broker
    (a Knative Service publishes no audience, so Knative gives its senders no token)."""
    host, port = sock.getsockname()[:2]
    folder = state_dir / NAME
    token_files: dict[tuple[str, str], TokenFile] = {}
    for service in topology.services:
        binding = topology.sink_binding_for(service)
        if binding is None or binding.sink.ref is None:
            continue
        ref = binding.sink.ref
        if (ref.api_version, ref.kind) != BROKER_KIND:
            continue
        path = folder / "tokens" / binding.namespace / binding.name / "token"
        token_files[(service.namespace, service.name)] = TokenFile(
            path,
            sink_binding_subject(binding.namespace, binding.name),
            broker_audience(ref.namespace or binding.namespace, ref.name),
        )
    return LocalIdentity(f"http://{host}:{port}", folder / "issuer-key.pem", token_files)


def check_verifiers_have_an_issuer(env_of: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse a run where services verify senders but nobody sends tokens: every event would be
    refused with 401, as it would in a cluster without the feature flag."""
    verifying = sorted(name for name, env in env_of.items() if env.get("OIDC_AUDIENCE"))
    if verifying:
        raise IdentityError(
            f"{', '.join(verifying)} verify sender tokens (OIDC_AUDIENCE is set), but sender "
            "identity is off, so no event would carry a token: run `shop up --oidc`, or put a "
            "`config-features` ConfigMap with `authentication-oidc: enabled` in the manifests"
        )


class IdentityRuntime:
    """Serves the issuer's documents and rewrites each token file when half its life is gone."""

    def __init__(self, identity: LocalIdentity, sock: socket.socket, console: Console) -> None:
        self.identity = identity
        self.issuer = LocalIssuer.from_key_file(identity.url, identity.key_file)
        self._server = IssuerServer(self.issuer, sock)
        self._console = console
        self._refresh: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._write_tokens()
        await self._server.start()
        self._refresh = asyncio.create_task(self._keep_fresh(), name="oidc token files")
        self._console.status(
            f"{NAME}: issuer at {self.identity.url}; token files for "
            f"{len(self.identity.token_files)} SinkBinding subject(s) in "
            f"{self.identity.key_file.parent / 'tokens'}"
        )

    def _write_tokens(self) -> None:
        for token_file in self.identity.token_files.values():
            write_token(self.issuer, token_file, self.identity.lifetime)

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.identity.lifetime / 2)
            try:
                self._write_tokens()
            except OSError as error:
                self._console.error(f"{NAME}: could not renew a token file: {error}")

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        await self._server.close()
