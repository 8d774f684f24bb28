"""Benchmark: a kit sink against a bare Flask handler under the same gunicorn settings and load.

    python -m shop.bench.kit [--seconds 5] [--rounds 3] [--connections 16] [--tracing]

Prints events/s of each, their ratio to bare Flask, latency percentiles, and the gunicorn
worker's CPU time per event (from /proc: less swayed by what else the machine runs). The kit answers
`POST /` in front of Flask's router; "kit via flask" is the same sink routed by Flask, to show
what that saves. With `--tracing`, "kit sink, traced" is the kit sink exporting its spans over
OTLP/HTTP to a receiver the benchmark starts (shop/bench/otlp_sink.py, its own process), and
"kit sink, 10% traced" the same with one trace in ten sampled; the spans received are counted.
Rounds rotate the order of the apps so that whatever else the machine does affects all alike;
the median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from dataclasses import dataclass
from pathlib import Path

from shop.bench.loadgen import LoadResult, closed_loop
from wire.http_binding import WireEvent, to_binary

APPS = {
    "bare flask": "shop.bench.kit_apps:bare_flask()",
    "kit sink": "shop.bench.kit_apps:kit_sink()",
    "kit via flask": "shop.bench.kit_apps:kit_sink_through_flask()",
}
# The traced variants of the kit sink: their OTEL_* (the endpoint is added).
TRACED = {
    "kit sink, traced": {"OTEL_SERVICE_NAME": "traced"},
    "kit sink, 10% traced": {
        "OTEL_SERVICE_NAME": "traced-10",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
}
# The shell's own OTEL_* must not trace the apps measured untraced.
_UNTRACED = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}


def event_request(n: int) -> tuple[dict[str, str], bytes]:
    event = WireEvent(
        {
            "specversion": "1.0",
            "id": f"{uuid.uuid4()}",
            "source": "/bench/loadgen",
            "type": "bench.event",
            "subject": f"order-{n}",
            "time": "2026-01-01T00:00:00Z",
            "datacontenttype": "application/json",
        },
        b'{"order_id":"o-1","lines":[{"sku":"a","quantity":1}]}',
    )
    return to_binary(event)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    app: str, log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        **(env or _UNTRACED),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [gunicorn, "-c", "python:kit.gunicorn_conf", app],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/", data=b"", timeout=1)
            break
        except OSError as error:
            if getattr(error, "code", None):  # any HTTP answer means it is up
                break
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)


def worker_cpu_seconds(master: subprocess.Popen[bytes]) -> float:
    """The CPU time (user and system) the gunicorn master's workers have used so far."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    ticks = 0
    for pid in children:
        # The fields after the command's closing parenthesis; utime and stime are 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Round:
    """One measured run of an app: the load's result and the worker's CPU time per event."""

    load: LoadResult
    cpu_us_per_event: float


def run(
    seconds: float, rounds: int, connections: int, otlp: str | None = None
) -> tuple[dict[str, list[Round]], dict[str, int]]:
    """Each app's rounds, and how many events each traced one was sent (with `otlp`, the
    receiver's URL)."""
    apps = dict(APPS)
    envs: dict[str, dict[str, str]] = {}
    if otlp:
        for name, env in TRACED.items():
            apps[name] = APPS["kit sink"]
            envs[name] = {**_UNTRACED, **env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
    results: dict[str, list[Round]] = {name: [] for name in apps}
    traced_events = dict.fromkeys(envs, 0)
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(rounds):
            order = list(apps.items())
            shift = round_number % len(order)
            order = order[shift:] + order[:shift]
            for name, app in order:
                process, url = serve(app, Path(scratch) / "gunicorn.log", envs.get(name))
                try:
                    warm = asyncio.run(
                        closed_loop(url, event_request, connections=connections, seconds=1)
                    )
                    cpu = worker_cpu_seconds(process)
                    result = asyncio.run(
                        closed_loop(url, event_request, connections=connections, seconds=seconds)
                    )
                    cpu = worker_cpu_seconds(process) - cpu
                finally:
                    stop(process)
                if result.failed:
                    raise SystemExit(f"{name}: {result.failed} requests failed: {result.statuses}")
                results[name].append(Round(result, cpu * 1e6 / max(result.ok, 1)))
                if name in traced_events:
                    traced_events[name] += warm.ok + result.ok
    return results, traced_events


def start_otlp_sink() -> tuple[subprocess.Popen[bytes], str]:
    """The spans' receiver (shop/bench/otlp_sink.py), in a process of its own."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shop.bench.otlp_sink", str(port)], start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return process, url
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def spans_received(url: str) -> dict[str, int]:
    """Spans the receiver got, by service name."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return {str(k): int(v) for k, v in json.load(answer)["spans"].items()}


def median_round(results: list[Round]) -> LoadResult:
    rates = [r.load.rate for r in results]
    return results[rates.index(statistics.median_low(rates))].load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--tracing", action="store_true", help="also the kit sink exporting its spans (OTLP/HTTP)"
    )
    args = parser.parse_args()
    sink, otlp = start_otlp_sink() if args.tracing else (None, None)
    try:
        results, traced_events = run(args.seconds, args.rounds, args.connections, otlp)
        spans = spans_received(otlp) if otlp else {}
    finally:
        if sink is not None:
            stop(sink)
    print(
        "gunicorn: kit.gunicorn_conf (BufferingThreadWorker, "
        f"{os.environ.get('WEB_CONCURRENCY', '1')} "
        f"worker, {os.environ.get('GUNICORN_THREADS', '8')} threads); load: {args.connections} "
        f"keep-alive connections, {args.seconds:g} s x {args.rounds} rounds, binary-mode events"
    )
    print(
        f"{'app':<20} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/event':>13}"
        "   rounds (events/s)"
    )
    medians, cpus = {}, {}
    for name, runs in results.items():
        best = median_round(runs)
        medians[name] = best.rate
        cpus[name] = cpu = statistics.median(r.cpu_us_per_event for r in runs)
        rounds = ", ".join(f"{r.load.rate:.0f}" for r in runs)
        print(
            f"{name:<20} {best.rate:>9.0f} {best.percentile(50):>7.2f} "
            f"{best.percentile(99):>7.2f} {cpu:>13.0f}   {rounds}"
        )
    for name in ("kit sink", "kit via flask", *traced_events):
        print(f"ratio {name} / bare flask: {medians[name] / medians['bare flask']:.2f}")
    for name, events in traced_events.items():
        received = spans.get(TRACED[name]["OTEL_SERVICE_NAME"], 0)
        print(
            f"{name} / kit sink: events/s {medians[name] / medians['kit sink']:.2f}, CPU per "
            f"event {cpus[name] - cpus['kit sink']:+.0f} us; spans received: {received} for "
            f"{events} events ({received / max(events, 1):.2f} each)"
        )


if __name__ == "__main__":
    main()
