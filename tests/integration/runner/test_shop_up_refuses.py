"""`shop up` refuses to start, with a message naming what is wrong and where, and runs nothing."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.runner_manifests import (
    broker_manifest,
    echo_service,
    trigger_manifest,
    write_manifests,
)
from tests.support.shop_up import ShopUp

ECHO_REF = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "echo"}}


def _without_command() -> dict[str, Any]:
    service = echo_service("echo")
    del service["spec"]["template"]["spec"]["containers"][0]["command"]
    return service


INVALID = {
    "a trigger without a subscriber": (
        trigger_manifest("no-subscriber", "echo") | {"spec": {"broker": "default"}},
        r"topology\.yaml:\d+: Trigger shop/no-subscriber: spec\.subscriber: required",
    ),
    "a Knative Service without a command": (
        None,
        r"topology\.yaml:\d+: Service shop/echo: spec\.template\.spec\.containers\[0\]\.command: "
        r"required by `shop up`: the image is not used locally",
    ),
}


@pytest.mark.parametrize(("extra", "message"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_manifest_stops_startup_naming_file_object_and_field(
    tmp_path: Path, extra: dict[str, Any] | None, message: str
) -> None:
    objects = [broker_manifest(), _without_command() if extra is None else echo_service("echo")]
    if extra is not None:
        objects.append(extra)
    shop = ShopUp(write_manifests(tmp_path / "manifests", objects), tmp_path / "state")

    code = shop.start(wait=False).wait_exit()

    assert code == 2
    assert re.search(r"^shop up: error: .*" + message, shop.output(), re.M), shop.output()
    _assert_nothing_ran(shop)


def test_an_env_override_for_a_service_that_does_not_exist_stops_startup(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "manifests", [echo_service("echo")])
    shop = ShopUp(manifests, tmp_path / "state", env_overrides={"ecoh": {"LOG_LEVEL": "DEBUG"}})

    assert shop.start(wait=False).wait_exit() == 2
    assert "no Knative Service 'ecoh' in the manifests (services: echo)" in shop.output()
    _assert_nothing_ran(shop)


def test_a_taken_broker_port_stops_startup(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "manifests", [broker_manifest(), echo_service("echo")])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        shop = ShopUp(manifests, tmp_path / "state", port=port)

        assert shop.start(wait=False).wait_exit() == 2

    assert f"the broker's port {port} is not free" in shop.output()
    _assert_nothing_ran(shop)


def test_a_service_that_never_answers_is_reported_with_the_tail_of_its_log(
    tmp_path: Path,
) -> None:
    manifests = write_manifests(
        tmp_path / "manifests", [echo_service("echo", args=["--exit-at-start", "3"])]
    )
    shop = ShopUp(manifests, tmp_path / "state", ready_timeout=3)

    code = shop.start(wait=False).wait_exit()

    output = shop.output()
    assert code == 1
    assert "shop up: echo exited with status 3 after" in output
    assert "restarting in 1s (restart 1)" in output
    assert re.search(
        r"^shop up: error: echo did not answer http://127\.0\.0\.1:\d+/healthz within 3s; "
        r"the last lines of its log \(.*echo\.log\):\n(    .*\n)*    echo-sink echo: exiting at "
        r"start with 3$",
        output,
        re.M,
    ), output
    assert "shop up: ready" not in output
    shop.assert_nothing_left()


def _assert_nothing_ran(shop: ShopUp) -> None:
    assert " started (pid " not in shop.output()
    assert not (shop.state_dir / "run" / "endpoints.json").exists()
