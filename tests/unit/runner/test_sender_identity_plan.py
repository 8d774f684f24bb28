"""`shop up` with sender identity: what each process is told, and the run it refuses."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
from pathlib import Path

import jwt

from shop.manifests import load_topology
from shop.runner.config import UpConfig
from shop.runner.console import Console
from shop.runner.identity import IdentityRuntime, oidc_requested, plan_identity
from shop.runner.mail import listening_socket
from shop.runner.up import EXIT_CANNOT_START, _prepare, run
from tests.support.processes import free_port
from tests.support.runner_manifests import (
    broker_manifest,
    config_map,
    echo_service,
    sink_binding,
    write_manifests,
)

BROKER_REF = {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}}
VERIFYING = [{"name": "OIDC_AUDIENCE", "value": "echo.shop.svc.cluster.local"}]


def _features(**data: str) -> dict[str, object]:
    return config_map("config-features", data, namespace="knative-eventing")


def test_a_sink_binding_to_a_broker_gets_a_token_file_for_the_brokers_audience(
    tmp_path: Path,
) -> None:
    manifests = write_manifests(
        tmp_path / "m",
        [
            broker_manifest(),
            echo_service("producer"),
            echo_service("other"),
            sink_binding("producer-broker", BROKER_REF, subject_name="producer"),
        ],
    )
    topology = load_topology(manifests)
    with listening_socket() as sock:
        identity = plan_identity(topology, tmp_path / "state", sock)
    [(key, token_file)] = identity.token_files.items()
    assert key == ("shop", "producer")
    assert token_file.subject == (
        "system:serviceaccount:shop:producer-broker-oidc-sources.knative.dev-sinkbinding"
    )
    assert token_file.audience == "eventing.knative.dev/broker/shop/default"
    assert token_file.path == tmp_path / "state/oidc/tokens/shop/producer-broker/token"


def test_the_cluster_only_ways_to_the_issuer_are_replaced_by_the_local_one(tmp_path: Path) -> None:
    topology = load_topology(write_manifests(tmp_path / "m", [echo_service("echo")]))
    with listening_socket() as sock:
        identity = plan_identity(topology, tmp_path / "state", sock)
    env = {
        "OIDC_AUDIENCE": "echo.shop.svc.cluster.local",
        "OIDC_ISSUER": "https://kubernetes.default.svc.cluster.local",
        "OIDC_CA_FILE": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "OIDC_DISCOVERY_TOKEN_FILE": "/var/run/secrets/kubernetes.io/serviceaccount/token",
    }
    identity.environment(topology.services[0], env)
    assert env == {"OIDC_AUDIENCE": "echo.shop.svc.cluster.local", "OIDC_ISSUER": identity.url}


def test_config_features_turn_it_on_as_the_switch_does(tmp_path: Path) -> None:
    off = load_topology(write_manifests(tmp_path / "off", [echo_service("echo")]))
    on = load_topology(
        write_manifests(
            tmp_path / "on", [echo_service("echo"), _features(**{"authentication-oidc": "enabled"})]
        )
    )
    assert not oidc_requested(off, switch=False)
    assert oidc_requested(off, switch=True)
    assert oidc_requested(on, switch=False)


def test_services_that_verify_senders_are_refused_without_sender_identity(tmp_path: Path) -> None:
    manifests = write_manifests(
        tmp_path / "m", [broker_manifest(), echo_service("echo", env=VERIFYING)]
    )
    output = io.StringIO()
    config = UpConfig(manifests=manifests, state_dir=tmp_path / "state", port=free_port())
    assert run(config, stdout=output) == EXIT_CANNOT_START
    assert "echo verify sender tokens" in output.getvalue()
    assert "shop up --oidc" in output.getvalue()


def test_with_the_switch_the_broker_mints_and_the_services_verify_against_the_local_issuer(
    tmp_path: Path,
) -> None:
    manifests = write_manifests(
        tmp_path / "m", [broker_manifest(), echo_service("echo", env=VERIFYING)]
    )
    config = UpConfig(manifests=manifests, state_dir=tmp_path / "s", port=free_port(), oidc=True)
    prepared = _prepare(config, Console.for_stream(io.StringIO(), {}, None), {})
    try:
        assert prepared.identity is not None
        plans = {plan.name: plan for plan in prepared.plans}
        argv = plans["broker"].argv
        assert argv[argv.index("--oidc-issuer") + 1] == prepared.identity.url
        assert argv[argv.index("--oidc-key") + 1] == str(tmp_path / "s/oidc/issuer-key.pem")
        assert plans["echo"].env["OIDC_ISSUER"] == prepared.identity.url
        assert json.loads(config.endpoints_file.read_text())["oidc"] == prepared.identity.url
    finally:
        prepared.close_sockets()
        os.close(prepared.lock)


def test_token_files_are_rewritten_before_their_tokens_expire(tmp_path: Path) -> None:
    topology = load_topology(
        write_manifests(
            tmp_path / "m",
            [
                broker_manifest(),
                echo_service("producer"),
                sink_binding("producer-broker", BROKER_REF, subject_name="producer"),
            ],
        )
    )

    async def watch() -> tuple[str, str, str]:
        with listening_socket() as sock:
            planned = plan_identity(topology, tmp_path / "state", sock)
            identity = dataclasses.replace(planned, lifetime=1.0)
            runtime = IdentityRuntime(identity, sock, Console.for_stream(io.StringIO(), {}, None))
            await runtime.start()
            try:
                [token_file] = identity.token_files.values()
                first = token_file.path.read_text()
                second = first
                for _ in range(50):  # rewritten once half the lifetime has passed (0.5 s)
                    await asyncio.sleep(0.1)
                    second = token_file.path.read_text()
                    if second != first:
                        break
                return first, second, runtime.issuer.url
            finally:
                await runtime.close()

    first, second, url = asyncio.run(watch())
    assert first != second
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["iss"] == url and claims["exp"] - claims["iat"] == 1
    assert claims["sub"].endswith(":producer-broker-oidc-sources.knative.dev-sinkbinding")
