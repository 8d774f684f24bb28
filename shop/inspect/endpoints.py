"""Where the running `shop up` is: `<state-dir>/run/endpoints.json`, read as the broker reads it.

The file stays after `shop up` stops (it describes the last run), so finding it proves nothing:
`local_shop` also checks that the run it describes is alive.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shop.broker.routes import RouteError, load_endpoints
from shop.inspect import NotRunning
from shop.inspect.reach import no_answer_at
from shop.runner.endpoints import PID_KEY

__all__ = ["LocalShop", "NotRunning", "local_shop", "origin"]

PROBE_TIMEOUT_SECONDS = 2.0
START_HINT = "start it with `make up`"


@dataclass(frozen=True)
class LocalShop:
    """The URLs of one `shop up` run."""

    endpoints: dict[str, str]
    source: Path

    def url(self, service: str, *, option: str) -> str:
        """A service's base URL; `option` names the flag that would give it instead."""
        found = self.endpoints.get(service)
        if not found:
            raise NotRunning(
                f"{self.source} has no {service!r} endpoint: does the topology run a "
                f"{service} service? (or pass {option})"
            )
        return found.rstrip("/")

    @property
    def broker_ingress(self) -> str:
        """The first Broker's ingress, e.g. http://127.0.0.1:8080/shop/default."""
        return self.url("broker", option="--to URL")

    @property
    def broker_admin(self) -> str:
        """The local broker's own base URL (its /_shop/ API and /metrics)."""
        return origin(self.broker_ingress)


def local_shop(state_dir: Path, *, option: str) -> LocalShop:
    """The endpoints of the `shop up` running with `state_dir`; NotRunning when none runs.

    `option` is what the user could pass instead (`--to URL`). The run endpoints.json describes
    is alive when both hold:

    - the pid it records (`pid`: the `shop up` process, which supervises all others) is a
      process that exists; a file without one (written by hand or by an older `shop up`) is
      judged by the next test alone;
    - something answers HTTP at the broker's address (`GET /healthz`; with no Broker, the first
      service's) within PROBE_TIMEOUT_SECONDS. Any status counts: a broker that answers 503
      runs but is not ready, which is for `shop status` to report.
    """
    path = state_dir / "run" / "endpoints.json"
    try:
        endpoints = load_endpoints(path)
    except RouteError as error:
        raise NotRunning(str(error)) from None
    if not endpoints:
        raise NotRunning(
            f"no shop up in {state_dir} (no {path}): {START_HINT} (or pass {option}, or "
            "--state-dir DIR for a shop started elsewhere)"
        )
    _check_alive(endpoints, option)
    return LocalShop(endpoints, path)


def _check_alive(endpoints: Mapping[str, str], option: str) -> None:
    probed = _probe_origin(endpoints)
    where = urlsplit(probed).netloc if probed else "this machine"
    not_running = NotRunning(f"no shop up on {where}: {START_HINT} (or pass {option})")
    pid = _recorded_pid(endpoints)
    if pid is not None and not _process_exists(pid):
        raise not_running
    if probed is None:
        return
    why = no_answer_at(f"{probed}/healthz", PROBE_TIMEOUT_SECONDS)
    if why is None:
        return
    if pid is None:
        raise not_running
    # The pid lives: shop up may still be starting, or the pid went to another process.
    raise NotRunning(
        f"no shop up answers on {where} ({why}), though pid {pid} runs: is it still "
        f"starting? Else {START_HINT} (or pass {option})"
    )


def _probe_origin(endpoints: Mapping[str, str]) -> str | None:
    """The broker's origin, else the first service's; None when the file names no HTTP URL."""
    urls = [endpoints["broker"]] if "broker" in endpoints else []
    urls += [url for key, url in endpoints.items() if "/" not in key]
    return next((origin(url) for url in urls if url.startswith(("http://", "https://"))), None)


def _recorded_pid(endpoints: Mapping[str, str]) -> int | None:
    try:
        return int(endpoints[PID_KEY])
    except (KeyError, ValueError):
        return None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def origin(url: str) -> str:
    """`scheme://host:port` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
