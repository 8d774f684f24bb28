"""`shop up` stops before starting anything when the manifests are invalid, naming file and field.

These call `run()` in-process (nothing is started when admission fails); the integration tests
check the same through a real `shop up` subprocess and its exit code.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from shop.runner.config import UpConfig
from shop.runner.up import EXIT_CANNOT_START, _lock_state_dir, run
from tests.support.processes import free_port
from tests.support.runner_manifests import (
    broker_manifest,
    echo_service,
    trigger_manifest,
    write_manifests,
)

INVALID = {
    "a bad ISO-8601 duration": (
        trigger_manifest("slow", "echo", delivery={"backoffDelay": "soon"}),
        r"topology\.yaml:\d+: Trigger shop/slow: spec\.delivery\.backoffDelay: ",
    ),
    "a filter entry with two dialects": (
        trigger_manifest(
            "two", "echo", filters=[{"exact": {"type": "a"}, "prefix": {"type": "b"}}]
        ),
        r"topology\.yaml:\d+: Trigger shop/two: spec\.filters\[0\]",
    ),
    "a CESQL expression that does not parse": (
        trigger_manifest("sql", "echo", filters=[{"cesql": "type = = 'x'"}]),
        r"topology\.yaml:\d+: Trigger shop/sql: spec\.filters\[0\]\.cesql",
    ),
    "a ConfigMap ref to a ConfigMap that does not exist": (
        echo_service(
            "needs-config",
            env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "A"}}}],
        ),
        r"topology\.yaml:\d+: Service shop/needs-config: spec\.template\.spec\.containers\[0\]"
        r"\.env\[0\]\.valueFrom\.configMapKeyRef: env A: ConfigMap shop/absent not found",
    ),
}


@pytest.mark.parametrize(("extra", "message"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_object_stops_startup_with_the_loaders_message(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    manifests = write_manifests(
        tmp_path / "manifests", [broker_manifest(), echo_service("echo"), extra]
    )
    output = io.StringIO()

    config = UpConfig(manifests=manifests, state_dir=tmp_path / "state", port=free_port())

    code = run(config, stdout=output)

    assert code == EXIT_CANNOT_START
    assert re.fullmatch("shop up: error: .*" + message + ".*\n", output.getvalue()), (
        output.getvalue()
    )
    assert not (tmp_path / "state").exists()


def test_a_profile_that_cannot_be_read_stops_startup(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "manifests", [echo_service("echo")])
    output = io.StringIO()

    code = run(
        UpConfig(manifests=manifests, state_dir=tmp_path / "state", profile=tmp_path / "nope.yaml"),
        stdout=output,
    )

    assert code == EXIT_CANNOT_START
    assert output.getvalue().startswith(f"shop up: error: {tmp_path / 'nope.yaml'}: cannot read")


def test_a_state_dir_another_shop_up_uses_stops_startup(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "manifests", [echo_service("echo")])
    config = UpConfig(manifests=manifests, state_dir=tmp_path / "state", port=free_port())
    held = _lock_state_dir(config)  # as the first `shop up` holds it while it runs
    output = io.StringIO()
    try:
        code = run(config, stdout=output)
    finally:
        os.close(held)

    assert code == EXIT_CANNOT_START
    assert f"another `shop up` (pid {os.getpid()}) is using the state dir" in output.getvalue()
