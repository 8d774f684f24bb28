"""Benchmark: the local broker (1 and 10 triggers) next to posting straight to the subscriber.

    python -m shop.bench.broker [--seconds 5] [--connections 32] [--rate 500] [--sync normal]
                                [--rounds 3] [--classes sqlite,rabbitmq] [--parallelism N]

For each broker class (`sqlite`: the store's own brokers; `rabbitmq`: class RabbitMQBroker on
`--rabbitmq`, its exchanges and queues deleted after each setup) and each setup it starts a
fresh subscriber process (and broker process), then measures
  - throughput: `connections` keep-alive clients post back to back for `seconds`; events/s is
    accepted events over the time until the subscriber received the last delivery;
  - latency: events posted at `rate` per second; p50/p99 from the producer's send to the
    subscriber's receipt (each event carries its send time as the `benchsent` extension).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from shop.bench import amqp_alone
from shop.bench.broker_wire import (
    RequestFactory,
    closed_loop,
    fetch_stats,
    open_loop,
    post_request,
    serve_subscriber,
)
from shop.broker.rabbitmq.topology import delete_broker

T = TypeVar("T")
HOST = "127.0.0.1"
NAMESPACE = "shop"
BROKER_PATH = f"/{NAMESPACE}/default"
CLASSES = ("sqlite", "rabbitmq")
RABBITMQ_CLASS = {"eventing.knative.dev/broker.class": "RabbitMQBroker"}
PARALLELISM = "rabbitmq.eventing.knative.dev/parallelism"
# The baseline of the rabbitmq class: its AMQP work alone (shop/bench/amqp_alone.py).
AMQP_ALONE = "amqp-alone"


@dataclass(frozen=True)
class Setup:
    """What one setup measures: `triggers` Triggers of a Broker of `broker_class` (0: none,
    straight to the subscriber)."""

    name: str
    triggers: int
    broker_class: str = ""


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


def trigger_names(triggers: int) -> list[str]:
    return [f"bench-{number}" for number in range(triggers)]


def write_manifests(
    directory: Path,
    subscriber_url: str,
    triggers: int,
    *,
    broker: str = "default",
    rabbitmq: bool = False,
    parallelism: int | None = None,
) -> Path:
    """Broker `broker` (of class RabbitMQBroker if `rabbitmq`) and `triggers` Triggers on
    `bench.event` to `<subscriber_url>/t<n>`; the folder."""
    folder = directory / "manifests"
    folder.mkdir()
    metadata: dict[str, object] = {"name": broker, "namespace": NAMESPACE}
    if rabbitmq:
        metadata["annotations"] = dict(RABBITMQ_CLASS)
    documents: list[dict[str, object]] = [
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": metadata}
    ]
    for number, name in enumerate(trigger_names(triggers)):
        trigger_metadata: dict[str, object] = {"name": name, "namespace": NAMESPACE}
        if rabbitmq and parallelism is not None:
            trigger_metadata["annotations"] = {PARALLELISM: str(parallelism)}
        documents.append(
            {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Trigger",
                "metadata": trigger_metadata,
                "spec": {
                    "broker": broker,
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


def wait_until_accepting(port: int, path: str, timeout: float = 20.0) -> None:
    """Return once the ingress answers 202 to an event no Trigger takes (a RabbitMQBroker's
    answers 503 until its connection is up); exit with a message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "probe",
        "ce-source": "/bench/probe",
        "ce-type": "bench.probe",
        "Content-Type": "application/json",
    }
    request = urllib.request.Request(
        f"http://{HOST}:{port}{path}", data=b"{}", headers=headers, method="POST"
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 202:
                    return
                seen: object = response.status
        except OSError as error:
            seen = error
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not accept within {timeout}s: {seen}")
        time.sleep(0.1)


def _run_setup(setup: Setup, options: argparse.Namespace, scratch: Path) -> Measurement:
    if setup.broker_class == AMQP_ALONE:
        rate = run_async(
            amqp_alone.events_per_second(
                options.rabbitmq, connections=options.connections, seconds=options.seconds
            )
        )
        return Measurement(setup.name, rate, rate, math.nan, math.nan, 0)
    directory = Path(tempfile.mkdtemp(dir=scratch))
    sub_port = free_port()
    subscriber = start_process(
        ["-m", "shop.bench.broker", "--subscriber", str(sub_port)], directory / "subscriber.log"
    )
    broker = None
    rabbitmq = setup.broker_class == "rabbitmq"
    # A name of its own per setup: a RabbitMQBroker's queues are named after it.
    name = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        wait_until_up(f"http://{HOST}:{sub_port}/_stats")
        if setup.triggers == 0:
            return run_async(
                _measure(setup.name, sub_port, "/", sub_port=sub_port, fanout=1, options=options)
            )
        port = free_port()
        manifests = write_manifests(
            directory,
            f"http://{HOST}:{sub_port}",
            setup.triggers,
            broker=name,
            rabbitmq=rabbitmq,
            parallelism=options.parallelism,
        )
        args = [
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
        ]
        if rabbitmq:
            args += ["--rabbitmq", options.rabbitmq]
        if not options.tracing:
            args.append("--no-tracing")
        broker = start_process(args, directory / "broker.log")
        if options.pid_file:
            options.pid_file.write_text(f"{broker.pid} {setup.name}\n")
        path = f"/{NAMESPACE}/{name}"
        wait_until_up(f"http://{HOST}:{port}/healthz")
        wait_until_accepting(port, path)
        return run_async(
            _measure(
                setup.name, port, path, sub_port=sub_port, fanout=setup.triggers, options=options
            )
        )
    finally:
        if broker is not None:
            stop_process(broker)
        stop_process(subscriber)
        if broker is not None and rabbitmq:
            delete_broker(options.rabbitmq, NAMESPACE, name, trigger_names(setup.triggers))


def setups_of(classes: list[str]) -> list[Setup]:
    """The direct post (and RabbitMQ's own rate, with the rabbitmq class), then 1 and 10
    Triggers of each broker class."""
    found = [Setup("straight to the subscriber", 0)]
    if "rabbitmq" in classes:
        found.append(Setup("AMQP alone (no HTTP)", 1, AMQP_ALONE))
    for broker_class in classes:
        found += [
            Setup(f"{broker_class}, 1 trigger", 1, broker_class),
            Setup(f"{broker_class}, 10 triggers", 10, broker_class),
        ]
    return found


def _classes(text: str) -> list[str]:
    classes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown or not classes:
        named = ", ".join(unknown) or "(none)"
        raise argparse.ArgumentTypeError(
            f"unknown broker class {named}: choose from {', '.join(CLASSES)}"
        )
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s of the latency run")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    parser.add_argument(
        "--classes",
        type=_classes,
        default=["sqlite"],
        help="broker classes, comma-separated: sqlite, rabbitmq (default sqlite)",
    )
    parser.add_argument(
        "--rabbitmq",
        default="amqp://guest:guest@127.0.0.1:5672/",
        help="the RabbitMQ of the rabbitmq class",
    )
    parser.add_argument(
        "--parallelism",
        type=int,
        help="the rabbitmq class's Triggers' parallelism annotation (default: none, that is 1)",
    )
    parser.add_argument(
        "--pid-file", type=Path, help="write each broker process's pid here (to profile it)"
    )
    parser.add_argument(
        "--no-tracing",
        dest="tracing",
        action="store_false",
        help="run the broker with --no-tracing (none of its own spans)",
    )
    parser.add_argument("--subscriber", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.subscriber:
        _run_subscriber(options.subscriber)
        return
    setups = setups_of(options.classes)
    rounds: dict[str, list[Measurement]] = {setup.name: [] for setup in setups}
    with tempfile.TemporaryDirectory() as scratch:
        # Rounds interleave the setups, so that whatever else the machine does hits all alike.
        for _ in range(options.rounds):
            for setup in setups:
                rounds[setup.name].append(_run_setup(setup, options, Path(scratch)))
    parallelism = "" if options.parallelism is None else f" parallelism {options.parallelism};"
    print(
        f"{os.cpu_count()} CPUs; load: {options.connections} keep-alive connections for "
        f"{options.seconds:g} s (throughput), then {options.rate:g} events/s for "
        f"{options.seconds:g} s (latency); broker --sync {options.sync};{parallelism} "
        f"binary-mode events; median of {options.rounds} rounds"
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
            f"   {every}" + (f"  ({refused} refused)" if refused else ""),
            flush=True,
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
