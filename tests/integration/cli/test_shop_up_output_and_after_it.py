"""A real `shop up`: its short log lines, the pid in endpoints.json, and the CLI once it stopped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.cli.conftest import run_shop
from tests.support.processes import wait_for
from tests.support.runner_manifests import (
    broker_manifest,
    echo_service,
    trigger_manifest,
    write_manifests,
)
from tests.support.shop_up import ShopUp


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_manifests(
        tmp_path_factory.mktemp("manifests"),
        [
            broker_manifest(),
            echo_service("echo"),
            trigger_manifest("echo-all", "echo"),
            # Its broker does not exist: the broker warns at start that it gets no events.
            trigger_manifest("orphan", "echo", broker="missing"),
        ],
    )


def test_human_output_shows_warnings_in_short_lines_and_the_log_keeps_the_json(
    manifests: Path, tmp_path: Path
) -> None:
    with ShopUp(manifests, tmp_path / "state", extra_args=["--log-format", "human"]) as shop:
        shop.wait_for_line(
            r"^broker \| \d\d:\d\d:\d\d warning trigger shop/orphan is not ready and gets no events"
        )
        shop.wait_for_line(r"^echo   \| echo-sink echo listening on ")  # not JSON: as written
        wait_for(
            lambda: '"message": "broker listening on' in shop.log("broker"),
            what="the broker's JSON line in its log file",
        )
        output = shop.output()
    assert "shop up: showing the warnings and errors of the processes" in output
    assert not re.search(r"^broker \| \{", output, re.M), output


def test_once_shop_up_stopped_every_command_says_so_in_one_line(
    manifests: Path, tmp_path: Path
) -> None:
    with ShopUp(manifests, tmp_path / "state") as shop:
        assert shop.endpoints["pid"] == str(shop.processes()["shop up"]["pid"])
        live = run_shop(shop, "status", "--local")
        assert "local (shop up" in live.out, live.err
    assert (shop.state_dir / "run" / "endpoints.json").exists()  # left from the run

    for args in (["status"], ["send", "--type", "t"], ["tail"], ["deadletters"]):
        ran = run_shop(shop, *args)
        assert ran.code == 2, ran
        assert ran.err.startswith(
            f"shop {args[0]}: no shop up on 127.0.0.1:{shop.port}: start it with `make up`"
        ), ran
        assert ran.err.count("\n") == 1 and ran.out == "", ran
