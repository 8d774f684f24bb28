"""Soak: the local broker under a steady load for minutes, its state folder sampled as it goes.

    python -m shop.bench.soak [--minutes 10] [--rate 500] [--triggers 3] [--sample 5]
                              [--retention-age 1h] [--retention-bytes 256M] [--plot FILE]

It starts the recording subscriber and a broker (as `shop.bench.broker` does) with `triggers`
Triggers to it, offers `rate` events/s open-loop for the whole run (each event stamped with the
time it was due, so a stall shows as latency rather than as fewer events), and every `sample`
seconds notes the state folder's size (database, WAL), the events offered, accepted, delivered
and pruned, and the delivery latency of that window. At the end it prints the table and the
summary, and draws the sizes over time into a PNG (`--plot`, default docs/soak.png).

The retention flags go to the broker as they are; their defaults are the broker's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shop.bench.broker import (
    BROKER_PATH,
    HOST,
    free_port,
    run_async,
    start_process,
    stop_process,
    wait_until_up,
    write_manifests,
)
from shop.bench.broker_wire import RequestFactory, Sent, fetch_stats, open_loop, post_request
from shop.broker.config import (
    DEFAULT_RETENTION_AGE,
    DEFAULT_RETENTION_BYTES,
    parse_age,
    parse_bytes,
    retention_text,
)
from shop.broker.store import WAL_SIZE_LIMIT

MIB = 1024 * 1024
DEFAULT_PLOT = Path(__file__).resolve().parents[2] / "docs" / "soak.png"


@dataclass
class Sample:
    """The state at one moment of the run."""

    seconds: float
    folder_bytes: int
    database_bytes: int
    wal_bytes: int
    offered: int
    accepted: int
    delivered: int
    pruned_by_age: int
    pruned_by_size: int
    p50_ms: float
    p99_ms: float
    load: float


def bound_bytes(retention_bytes: int) -> int:
    """The state folder's stated bound (docs/broker.md): the retention size, a twentieth more
    for half-empty pages and free pages not yet given back, and the WAL's size limit twice
    (it may outgrow the limit by the writes of a checkpoint's interval)."""
    return retention_bytes + retention_bytes // 20 + 2 * WAL_SIZE_LIMIT


def folder_sizes(state_dir: Path) -> tuple[int, int, int]:
    """Bytes of everything under `state_dir`, of the database file and of its WAL."""
    total = 0
    for root, _, files in os.walk(state_dir):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    database = state_dir / "broker" / "broker.db"
    return total, _size(database), _size(database.with_name("broker.db-wal"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def scheduled_requests(port: int, rate: float, run: str) -> RequestFactory:
    """Requests stamped with the time each was due (`benchsent`), not the time it went out."""
    body = b'{"order_id":"o-1","lines":[{"sku":"a","quantity":1}]}'
    fixed = {
        "ce-specversion": "1.0",
        "ce-source": "/bench/soak",
        "ce-type": "bench.event",
        "Content-Type": "application/json",
    }
    start_ns = time.time_ns()

    def make(n: int) -> bytes:
        due = start_ns + int(n * 1e9 / rate)
        headers = {**fixed, "ce-id": f"{run}-{n}", "ce-benchsent": str(due)}
        return post_request(HOST, port, BROKER_PATH, headers, body)

    return make


async def _metrics(port: int) -> dict[str, float]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    samples: dict[str, float] = {}
    for line in raw.partition(b"\r\n\r\n")[2].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@dataclass
class _Run:
    options: argparse.Namespace
    state_dir: Path
    broker_port: int
    sub_port: int
    sent: Sent
    started: float = 0.0
    delivered: int = 0


async def _sample(run: _Run) -> Sample:
    latencies, _ = await fetch_stats(HOST, run.sub_port)
    run.delivered += len(latencies)
    metrics = await _metrics(run.broker_port)
    folder, database, wal = folder_sizes(run.state_dir)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    elapsed = time.monotonic() - run.started
    return Sample(
        seconds=elapsed,
        folder_bytes=folder,
        database_bytes=database,
        wal_bytes=wal,
        offered=min(int(elapsed * run.options.rate), int(run.options.rate * run.options.seconds)),
        accepted=run.sent.accepted,
        delivered=run.delivered,
        pruned_by_age=int(metrics.get('shop_broker_events_pruned_total{reason="age"}', 0)),
        pruned_by_size=int(metrics.get('shop_broker_events_pruned_total{reason="size"}', 0)),
        p50_ms=quantiles[49],
        p99_ms=quantiles[98],
        load=os.getloadavg()[0],
    )


async def _soak(run: _Run) -> tuple[list[Sample], dict[str, float]]:
    options = run.options
    make = scheduled_requests(run.broker_port, options.rate, f"soak-{time.time_ns()}")
    run.started = time.monotonic()
    load = asyncio.create_task(
        open_loop(
            HOST, run.broker_port, make, rate=options.rate, seconds=options.seconds, sent=run.sent
        ),
    )
    samples: list[Sample] = []
    while not load.done():
        await asyncio.wait({load}, timeout=options.sample)
        samples.append(await _sample(run))
        _print_sample(samples[-1], options.triggers, first=len(samples) == 1)
    load.result()
    expected = run.sent.accepted * options.triggers
    deadline = time.monotonic() + 120
    while run.delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(options.sample)
        samples.append(await _sample(run))
        _print_sample(samples[-1], options.triggers, first=False)
    return samples, await _metrics(run.broker_port)


def _print_sample(sample: Sample, triggers: int, *, first: bool) -> None:
    if first:
        print(
            f"{'s':>5} {'folder MiB':>10} {'db MiB':>7} {'wal MiB':>7} {'offered':>8} "
            f"{'accepted':>8} {'delivered':>10} {'pruned':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'load':>5}",
            flush=True,
        )
    print(
        f"{sample.seconds:>5.0f} {sample.folder_bytes / MIB:>10.1f} "
        f"{sample.database_bytes / MIB:>7.1f} {sample.wal_bytes / MIB:>7.1f} "
        f"{sample.offered:>8} {sample.accepted:>8} {sample.delivered // triggers:>10} "
        f"{sample.pruned_by_age + sample.pruned_by_size:>8} {sample.p50_ms:>7.2f} "
        f"{sample.p99_ms:>7.2f} {sample.load:>5.2f}",
        flush=True,
    )


def plot(samples: list[Sample], options: argparse.Namespace, path: Path) -> None:
    """The state folder's size over time, with the retention size and the stated bound."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [sample.seconds / 60 for sample in samples]
    figure, (sizes, events) = pyplot.subplots(
        2, 1, figsize=(9, 6.5), sharex=True, height_ratios=(3, 2)
    )
    sizes.plot(minutes, [s.folder_bytes / MIB for s in samples], label="state folder")
    sizes.plot(minutes, [s.database_bytes / MIB for s in samples], label="broker.db")
    sizes.plot(minutes, [s.wal_bytes / MIB for s in samples], label="broker.db-wal")
    sizes.axhline(
        options.retention_bytes / MIB, linestyle=":", color="grey", label="retention size"
    )
    sizes.axhline(
        bound_bytes(options.retention_bytes) / MIB,
        linestyle="--",
        color="red",
        label="stated bound",
    )
    sizes.set_ylabel("MiB")
    sizes.set_title(
        f"shop broker, {options.rate:g} events/s to {options.triggers} triggers, retention "
        f"{retention_text(options.retention_age, options.retention_bytes)}"
    )
    sizes.legend(loc="upper left")
    sizes.grid(alpha=0.3)
    events.plot(minutes, [s.accepted / 1000 for s in samples], label="accepted")
    events.plot(
        minutes, [s.delivered / options.triggers / 1000 for s in samples], label="delivered (all)"
    )
    events.plot(
        minutes, [(s.pruned_by_age + s.pruned_by_size) / 1000 for s in samples], label="pruned"
    )
    events.set_ylabel("thousand events")
    events.set_xlabel("minutes")
    events.legend(loc="upper left")
    events.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _summary(samples: list[Sample], metrics: dict[str, float], run: _Run) -> None:
    options = run.options
    largest = max(samples, key=lambda sample: sample.folder_bytes)
    last = samples[-1]
    steps = metrics.get("shop_broker_prune_step_seconds_count", 0)
    step_total = metrics.get("shop_broker_prune_step_seconds_sum", 0.0)
    slow_steps = steps - metrics.get('shop_broker_prune_step_seconds_bucket{le="0.01"}', steps)
    print()
    print(
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()}; "
        f"{options.rate:g} events/s for {options.seconds:g} s to {options.triggers} triggers; "
        f"retention {retention_text(options.retention_age, options.retention_bytes)}"
    )
    print(
        f"state folder: at most {largest.folder_bytes / MIB:.1f} MiB (at {largest.seconds:.0f} s;"
        f" database {largest.database_bytes / MIB:.1f}, WAL {largest.wal_bytes / MIB:.1f}); "
        f"at the end {last.folder_bytes / MIB:.1f} MiB; stated bound "
        f"{bound_bytes(options.retention_bytes) / MIB:.1f} MiB"
    )
    print(
        f"events: offered {int(options.rate * options.seconds)}, accepted {run.sent.accepted}, "
        f"refused {run.sent.refused}, delivered {run.delivered} of "
        f"{run.sent.accepted * options.triggers} deliveries; pruned {last.pruned_by_age} by "
        f"age and {last.pruned_by_size} by size"
    )
    window = [sample.p99_ms for sample in samples if sample.delivered]
    print(
        f"delivery latency (due time to the subscriber): p99 of the windows at most "
        f"{max(window, default=0):.2f} ms, median window p99 {statistics.median(window or [0]):.2f}"
        f" ms; retention steps {steps:.0f}, {step_total:.1f} s in all, "
        f"{slow_steps:.0f} over 10 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s, open loop")
    parser.add_argument("--triggers", type=int, default=3)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--retention-age", type=parse_age, default=DEFAULT_RETENTION_AGE)
    parser.add_argument("--retention-bytes", type=parse_bytes, default=DEFAULT_RETENTION_BYTES)
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument(
        "--log-level", default="INFO", help="the broker's (INFO: a line per delivery, as always)"
    )
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="the PNG to write")
    options = parser.parse_args()
    options.seconds = options.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        sub_port, broker_port = free_port(), free_port()
        subscriber = start_process(
            ["-m", "shop.bench.broker", "--subscriber", str(sub_port)], directory / "sub.log"
        )
        broker = None
        try:
            wait_until_up(f"http://{HOST}:{sub_port}/_stats")
            manifests = write_manifests(directory, f"http://{HOST}:{sub_port}", options.triggers)
            state_dir = directory / "state"
            broker = start_process(
                [
                    "-m",
                    "shop.cli",
                    "broker",
                    "--manifests",
                    str(manifests),
                    "--port",
                    str(broker_port),
                    "--state-dir",
                    str(state_dir),
                    "--sync",
                    options.sync,
                    "--retention-age",
                    str(options.retention_age),
                    "--retention-bytes",
                    str(options.retention_bytes),
                    "--log-level",
                    options.log_level,
                ],
                directory / "broker.log",
            )
            wait_until_up(f"http://{HOST}:{broker_port}/healthz")
            run = _Run(options, state_dir, broker_port, sub_port, Sent())
            samples, metrics = run_async(_soak(run))
        finally:
            if broker is not None:
                stop_process(broker)
            stop_process(subscriber)
        _summary(samples, metrics, run)
        plot(samples, options, options.plot)
        print(f"plot: {options.plot}")


if __name__ == "__main__":
    main()
