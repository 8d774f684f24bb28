"""One `shop up` of the whole chart (plus a flaky sink) for the CLI's tests, and running `shop`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.deadletter.topology import observed_shop
from tests.support.shop_up import REPO_ROOT, ShopUp


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    with observed_shop(tmp_path_factory.mktemp("cli")) as running:
        yield running


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def run_shop(shop: ShopUp | None, *args: str, timeout: float = 60) -> Ran:
    """`shop ARGS [--state-dir <the running shop's>]` as a subprocess, from the repository."""
    state = ["--state-dir", str(shop.state_dir)] if shop is not None else []
    done = subprocess.run(  # noqa: PLW1510 (the exit code is the result)
        [sys.executable, "-m", "shop.cli", *args, *state],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Ran(done.returncode, done.stdout, done.stderr)
