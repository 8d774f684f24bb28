"""Benchmark: the local broker (1 and 10 triggers) next to posting straight to the subscriber.

    python -m shop.bench.broker [--seconds 5] [--connections 32] [--rate 500] [--sync normal]
                                [--rounds 3]

For each setup it starts a fresh subscriber process (and broker process), then measures
  - throughput: `connections` keep-alive clients post back to back for `seconds`; events/s is
    accepted events over the time until the subscriber received the last delivery;
  - latency: events posted at `rate` per second; p50/p99 from the producer's send to the
    subscriber's receipt (each event carries its send time as the `benchsent` extension).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from shop.bench.broker_wire import (
    RequestFactory,
    closed_loop,
    fetch_stats,
    open_loop,
    post_request,
    serve_subscriber,
)

T = TypeVar("T")
HOST = "127.0.0.1"
BROKER_PATH = "/shop/default"


@dataclass
class Measurement:
    """One setup's numbers."""

    name: str
    events_per_second: float
    deliveries_per_second: float
    p50_ms: float
    p99_ms: float
    refused: int


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 20.0) -> None:
    """Return once `url` answers at all; exit with a message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError as error:
            if getattr(error, "code", None):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up within {timeout}s: {error}") from None
            time.sleep(0.05)


def start_process(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`python <args>` in its own session, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group, SIGKILL after 10 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def write_manifests(directory: Path, subscriber_url: str, triggers: int) -> Path:
    """A Broker and `triggers` Triggers on `bench.event` to `<subscriber_url>/t<n>`; the folder."""
    folder = directory / "manifests"
    folder.mkdir()
    documents: list[dict[str, object]] = [
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "metadata": {"name": "default", "namespace": "shop"},
        }
    ]
    for number in range(triggers):
        documents.append(
            {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Trigger",
                "metadata": {"name": f"bench-{number}", "namespace": "shop"},
                "spec": {
                    "broker": "default",
                    "filter": {"attributes": {"type": "bench.event"}},
                    "subscriber": {"uri": f"{subscriber_url}/t{number}"},
                },
            }
        )
    (folder / "bench.yaml").write_text(yaml.safe_dump_all(documents))
    return folder


def request_factory(port: int, path: str, run: str) -> RequestFactory:
    """Binary-mode `bench.event` POSTs, each with its own id and its send time (`benchsent`)."""
    body = b'{"order_id":"o-1","lines":[{"sku":"a","quantity":1}]}'
    fixed = {
        "ce-specversion": "1.0",
        "ce-source": "/bench/loadgen",
        "ce-type": "bench.event",
        "Content-Type": "application/json",
    }

    def make(n: int) -> bytes:
        headers = {**fixed, "ce-id": f"{run}-{n}", "ce-benchsent": str(time.time_ns())}
        return post_request(HOST, port, path, headers, body)

    return make


async def _collect(sub_port: int, expected: int, timeout: float) -> tuple[list[float], float]:
    """Latencies of `expected` deliveries and the time of the last, polling the subscriber."""
    latencies: list[float] = []
    last = 0.0
    deadline = time.monotonic() + timeout
    while len(latencies) < expected and time.monotonic() < deadline:
        more, latest = await fetch_stats(HOST, sub_port)
        latencies.extend(more)
        last = max(last, latest)
        if len(latencies) < expected:
            await asyncio.sleep(0.05)
    if len(latencies) < expected:
        raise SystemExit(f"only {len(latencies)} of {expected} deliveries arrived in {timeout}s")
    return latencies, last


async def _measure(
    name: str, port: int, path: str, *, sub_port: int, fanout: int, options: argparse.Namespace
) -> Measurement:
    make = request_factory(port, path, f"{name[:6]}-{time.time_ns()}")
    warm = await closed_loop(HOST, port, make, connections=options.connections, seconds=1)
    await _collect(sub_port, warm.accepted * fanout, 60)
    load = await closed_loop(
        HOST,
        port,
        make,
        connections=options.connections,
        seconds=options.seconds,
    )
    _, last = await _collect(sub_port, load.accepted * fanout, 120)
    elapsed = max(last - load.started, load.seconds)
    steady = await open_loop(HOST, port, make, rate=options.rate, seconds=options.seconds)
    latencies, _ = await _collect(sub_port, steady.accepted * fanout, 60)
    quantiles = statistics.quantiles(latencies, n=100)
    return Measurement(
        name,
        load.accepted / elapsed,
        load.accepted * fanout / elapsed,
        quantiles[49],
        quantiles[98],
        load.refused + steady.refused,
    )


def _run_setup(name: str, triggers: int, options: argparse.Namespace, scratch: Path) -> Measurement:
    directory = Path(tempfile.mkdtemp(dir=scratch))
    sub_port = free_port()
    subscriber = start_process(
        ["-m", "shop.bench.broker", "--subscriber", str(sub_port)], directory / "subscriber.log"
    )
    broker = None
    try:
        wait_until_up(f"http://{HOST}:{sub_port}/_stats")
        if triggers == 0:
            return run_async(
                _measure(name, sub_port, "/", sub_port=sub_port, fanout=1, options=options)
            )
        port = free_port()
        manifests = write_manifests(directory, f"http://{HOST}:{sub_port}", triggers)
        broker = start_process(
            [
                "-m",
                "shop.cli",
                "broker",
                "--manifests",
                str(manifests),
                "--port",
                str(port),
                "--state-dir",
                str(directory / "state"),
                "--sync",
                options.sync,
            ],
            directory / "broker.log",
        )
        wait_until_up(f"http://{HOST}:{port}/healthz")
        return run_async(
            _measure(name, port, BROKER_PATH, sub_port=sub_port, fanout=triggers, options=options)
        )
    finally:
        if broker is not None:
            stop_process(broker)
        stop_process(subscriber)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s of the latency run")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    parser.add_argument("--subscriber", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.subscriber:
        _run_subscriber(options.subscriber)
        return
    setups = [
        ("straight to the subscriber", 0),
        ("broker, 1 trigger", 1),
        ("broker, 10 triggers", 10),
    ]
    rounds: dict[str, list[Measurement]] = {name: [] for name, _ in setups}
    with tempfile.TemporaryDirectory() as scratch:
        # Rounds interleave the setups, so that whatever else the machine does hits all alike.
        for _ in range(options.rounds):
            for name, triggers in setups:
                rounds[name].append(_run_setup(name, triggers, options, Path(scratch)))
    print(
        f"{os.cpu_count()} CPUs; load: {options.connections} keep-alive connections for "
        f"{options.seconds:g} s (throughput), then {options.rate:g} events/s for "
        f"{options.seconds:g} s (latency); broker --sync {options.sync}; binary-mode events; "
        f"median of {options.rounds} rounds"
    )
    print(
        f"{'setup':<28} {'events/s':>9} {'deliveries/s':>13} {'p50 ms':>7} {'p99 ms':>7}"
        "   rounds (events/s; p99 ms)"
    )
    for name, measured in rounds.items():
        rates = [m.events_per_second for m in measured]
        result = measured[rates.index(statistics.median_low(rates))]
        every = ", ".join(f"{m.events_per_second:.0f}; {m.p99_ms:.2f}" for m in measured)
        refused = sum(m.refused for m in measured)
        print(
            f"{name:<28} {result.events_per_second:>9.0f} "
            f"{result.deliveries_per_second:>13.0f} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f}"
            f"   {every}" + (f"  ({refused} refused)" if refused else "")
        )


def run_async(main: Coroutine[object, object, T]) -> T:
    """Run `main` on uvloop when it is installed: the load generator and the subscriber share
    the machine with the broker, so the less CPU they take, the better."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _run_subscriber(port: int) -> None:
    run_async(serve_subscriber(port))


if __name__ == "__main__":
    main()
