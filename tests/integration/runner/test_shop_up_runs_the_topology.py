"""One real `shop up` over test manifests: what it writes, what each process sees, the event flow.

The Knative Services run tests/support/echo_sink.py, which reports its environment and argv and
records the events it gets; the broker is the real `shop broker`.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import sys
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import wait_for
from tests.support.runner_manifests import (
    broker_manifest,
    broker_ref,
    config_map,
    echo_service,
    secret,
    sink_binding,
    trigger_manifest,
    write_manifests,
)
from tests.support.shop_up import ShopUp

CLUSTER_DATABASE_URL = "postgresql://shop:pw@postgresql.shop.svc:5432/echo"
AUDIT_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "audit"}


def _topology() -> list[dict[str, Any]]:
    return [
        broker_manifest(),
        config_map("echo-config", {"GREETING": "hello from a ConfigMap", "MODE": "local-test"}),
        secret("echo-secrets", {"API_TOKEN": "s3cret", "DATABASE_URL": CLUSTER_DATABASE_URL}),
        echo_service(
            "echo",
            env=[
                _from("GREETING", "configMapKeyRef", "echo-config"),
                _from("API_TOKEN", "secretKeyRef", "echo-secrets"),
                _from("DATABASE_URL", "secretKeyRef", "echo-secrets"),
                {"name": "SMTP_HOST", "value": "mailpit.shop.svc.cluster.local"},
                {"name": "SMTP_PORT", "value": "1025"},
                {"name": "SMTP_TLS", "value": "starttls"},
                {"name": "MAIL_FROM", "value": "shop@example.com"},
                {"name": "LOG_LEVEL", "value": "INFO"},
            ],
            env_from=[{"configMapRef": {"name": "echo-config"}, "prefix": "CM_"}],
            args=["--name=$(K_SERVICE)", "$(GREETING)"],
            labels={"sends-events": "yes"},
        ),
        echo_service("audit"),
        sink_binding(
            "event-senders",
            broker_ref(),
            match_labels={"sends-events": "yes"},
            extensions={"origin": "laptop"},
        ),
        trigger_manifest(
            "echo-on-order-created", "echo", filter={"attributes": {"type": "order.created"}}
        ),
        trigger_manifest("audit-everything", {"ref": AUDIT_REF, "uri": "/all"}),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "postgresql", "namespace": "shop"},
        },
    ]


def _from(name: str, source: str, object_name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {source: {"name": object_name, "key": name}}}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    root = tmp_path_factory.mktemp("shop-up")
    manifests = write_manifests(root / "manifests", _topology())
    environment = {**os.environ, "NOT_FOR_SERVICES": "a shell secret"}
    with ShopUp(
        manifests,
        root / "state",
        env_overrides={"echo": {"LOG_LEVEL": "WARNING"}},
        env=environment,
    ) as running:
        yield running


def _get(shop: ShopUp, service: str, path: str) -> Any:
    response = requests.get(f"{shop.url(service)}{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def test_endpoints_json_names_the_broker_every_service_and_the_mail_server(shop: ShopUp) -> None:
    endpoints = shop.endpoints
    broker = f"http://127.0.0.1:{shop.port}/shop/default"

    assert endpoints["broker"] == broker
    assert endpoints["broker/shop/default"] == broker
    for name in ("echo", "audit"):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoints[name])
        assert endpoints[f"shop/{name}"] == endpoints[name]
    assert endpoints["echo"] != endpoints["audit"]
    assert re.fullmatch(r"smtp://127\.0\.0\.1:\d+", endpoints["smtp"])
    assert endpoints["maildir"] == str(shop.state_dir / "mail")


def test_every_process_answers_at_its_endpoint(shop: ShopUp) -> None:
    for name in ("echo", "audit"):
        assert requests.get(f"{shop.url(name)}/healthz", timeout=5).status_code == 200
    broker_root = shop.broker_url.removesuffix("/shop/default")
    assert requests.get(f"{broker_root}/healthz", timeout=5).status_code == 200


def test_a_service_sees_knative_variables_its_manifest_env_and_the_local_profile(
    shop: ShopUp,
) -> None:
    env = _get(shop, "echo", "/env")
    smtp_port = shop.endpoints["smtp"].rpartition(":")[2]

    assert env["PORT"] == shop.url("echo").rpartition(":")[2]
    assert env["HOST"] == "127.0.0.1"
    assert env["K_SERVICE"] == "echo"
    assert env["K_SINK"] == shop.broker_url
    assert json.loads(env["K_CE_OVERRIDES"]) == {"extensions": {"origin": "laptop"}}
    assert env["GREETING"] == "hello from a ConfigMap"  # configMapKeyRef
    assert env["API_TOKEN"] == "s3cret"  # secretKeyRef
    assert env["CM_MODE"] == "local-test"  # envFrom with a prefix
    assert env["DATABASE_URL"] == f"sqlite:///{shop.state_dir}/data/echo.db"  # the profile
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_TLS"]) == ("127.0.0.1", smtp_port, "none")
    assert env["MAIL_FROM"] == "shop@example.com"
    assert env["LOG_LEVEL"] == "WARNING"  # --env echo:LOG_LEVEL=WARNING
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert "NOT_FOR_SERVICES" not in env


def test_a_service_no_sink_binding_selects_gets_no_k_sink(shop: ShopUp) -> None:
    env = _get(shop, "audit", "/env")

    assert "K_SINK" not in env
    assert env["K_SERVICE"] == "audit"
    assert "LOG_LEVEL" not in env  # the --env override was for echo only


def test_command_and_args_are_expanded_with_the_services_environment(shop: ShopUp) -> None:
    argv = _get(shop, "echo", "/argv")

    assert argv[1:] == ["--name=echo", "hello from a ConfigMap"]


def test_output_lines_carry_the_aligned_name_of_their_process(shop: ShopUp) -> None:
    # Names: smtp, broker, echo, audit -> padded to "broker".
    shop.wait_for_line(r"^echo   \| echo-sink echo listening on 127\.0\.0\.1:\d+$")
    shop.wait_for_line(r"^audit  \| echo-sink audit listening on 127\.0\.0\.1:\d+$")
    shop.wait_for_line(r"^broker \| \{.*\"message\": \"broker listening on ")


def test_the_table_shows_each_service_with_its_triggers_then_ready(shop: ShopUp) -> None:
    lines = shop.output().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SERVICE "))
    end = lines.index("shop up: ready")
    table = "\n".join(lines[start:end])

    assert re.search(
        r"^echo +http://127\.0\.0\.1:\d+ +echo-on-order-created +type = order\.created$",
        table,
        re.M,
    )
    assert re.search(
        r"^audit +http://127\.0\.0\.1:\d+ +audit-everything \(/all\) +all events$", table, re.M
    )
    assert re.search(
        r"^broker shop/default +http://127\.0\.0\.1:\d+/shop/default +2 triggers$", table, re.M
    )


def test_kinds_it_does_not_run_are_listed_once_as_ignored(shop: ShopUp) -> None:
    ignored = [line for line in shop.output().splitlines() if "ignored" in line]

    assert ignored == ["shop up: ignored (not run locally): Deployment (apps/v1): postgresql"]


def _post_event(shop: ShopUp, event_type: str) -> str:
    event_id = str(uuid.uuid4())
    response = requests.post(
        shop.broker_url,
        data=json.dumps({"order_id": "o-1"}),
        headers={
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-source": "/tests/runner",
            "ce-type": event_type,
            "content-type": "application/json",
        },
        timeout=5,
    )
    assert response.status_code == 202, response.text
    return event_id


def _received(shop: ShopUp, service: str, event_id: str) -> dict[str, Any] | None:
    events: list[dict[str, Any]] = _get(shop, service, "/events")
    return next((e for e in events if e["headers"].get("ce-id") == event_id), None)


def test_an_event_posted_to_the_broker_reaches_the_subscribers_whose_trigger_matches(
    shop: ShopUp,
) -> None:
    order_created = _post_event(shop, "order.created")
    user_created = _post_event(shop, "user.created")

    at_echo = wait_for(lambda: _received(shop, "echo", order_created), what="echo gets it")
    at_audit = wait_for(lambda: _received(shop, "audit", order_created), what="audit gets it")
    wait_for(lambda: _received(shop, "audit", user_created), what="audit gets user.created")

    assert at_echo["path"] == "/"
    assert at_echo["headers"]["ce-type"] == "order.created"
    assert at_audit["path"] == "/all"  # the subscriber's uri, resolved against the ref
    assert _received(shop, "echo", user_created) is None  # echo's filter is order.created
    shop.wait_for_line(r"^echo   \| received order\.created$")


def test_a_mail_sent_to_the_local_smtp_server_lands_in_the_maildir(shop: ShopUp) -> None:
    env = _get(shop, "echo", "/env")  # send where the service would, by its own settings
    mail = EmailMessage()
    mail["From"] = env["MAIL_FROM"]
    mail["To"] = "ada@example.com"
    mail["Subject"] = f"Your order o-1 is confirmed ({uuid.uuid4()})"
    mail.set_content("Thank you.")

    with smtplib.SMTP(env["SMTP_HOST"], int(env["SMTP_PORT"]), timeout=5) as client:
        client.send_message(mail)

    kept = wait_for(
        lambda: next((m for m in shop.mails() if m["Subject"] == mail["Subject"]), None),
        what="the mail in the Maildir",
    )
    assert kept["X-RcptTo"] == "ada@example.com"
    assert kept["X-MailFrom"] == "shop@example.com"
    assert kept.get_content().strip() == "Thank you."
    shop.wait_for_line(r"^smtp   \| kept a mail from shop@example\.com to ada@example\.com")


def test_processes_and_logs_are_kept_under_the_state_dir(shop: ShopUp) -> None:
    processes = shop.processes()

    assert set(processes) == {"shop up", "watchdog", "broker", "echo", "audit"}
    assert processes["echo"]["pid"] == processes["echo"]["pgid"]
    assert processes["echo"]["url"] == shop.url("echo")
    assert "echo-sink echo listening on" in shop.log("echo")
    assert "broker listening on" in shop.log("broker")
