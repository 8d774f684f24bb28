"""Benchmark: a kit sink against a bare Flask handler under the same gunicorn settings and load.

    python -m shop.bench.kit [--seconds 5] [--rounds 3] [--connections 16]

Prints events/s of each, their ratio to bare Flask, and latency percentiles. The kit answers
`POST /` in front of Flask's router; "kit via flask" is the same sink routed by Flask, to show
what that saves. Rounds rotate the order of the apps so that whatever else the machine does
affects all alike; the median round is reported.
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
import uuid
from pathlib import Path

from shop.bench.loadgen import LoadResult, closed_loop
from wire.http_binding import WireEvent, to_binary

APPS = {
    "bare flask": "shop.bench.kit_apps:bare_flask()",
    "kit sink": "shop.bench.kit_apps:kit_sink()",
    "kit via flask": "shop.bench.kit_apps:kit_sink_through_flask()",
}


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


def serve(app: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "INFO"}
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


def run(seconds: float, rounds: int, connections: int) -> dict[str, list[LoadResult]]:
    results: dict[str, list[LoadResult]] = {name: [] for name in APPS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(rounds):
            order = list(APPS.items())
            shift = round_number % len(order)
            order = order[shift:] + order[:shift]
            for name, app in order:
                process, url = serve(app, Path(scratch) / "gunicorn.log")
                try:
                    asyncio.run(closed_loop(url, event_request, connections=connections, seconds=1))
                    result = asyncio.run(
                        closed_loop(url, event_request, connections=connections, seconds=seconds)
                    )
                finally:
                    stop(process)
                if result.failed:
                    raise SystemExit(f"{name}: {result.failed} requests failed: {result.statuses}")
                results[name].append(result)
    return results


def median_round(results: list[LoadResult]) -> LoadResult:
    rates = [r.rate for r in results]
    return results[rates.index(statistics.median_low(rates))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    results = run(args.seconds, args.rounds, args.connections)
    print(
        "gunicorn: kit.gunicorn_conf (BufferingThreadWorker, "
        f"{os.environ.get('WEB_CONCURRENCY', '1')} "
        f"worker, {os.environ.get('GUNICORN_THREADS', '8')} threads); load: {args.connections} "
        f"keep-alive connections, {args.seconds:g} s x {args.rounds} rounds, binary-mode events"
    )
    print(f"{'app':<14} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8}   rounds (events/s)")
    medians = {}
    for name, runs in results.items():
        best = median_round(runs)
        medians[name] = best.rate
        rounds = ", ".join(f"{r.rate:.0f}" for r in runs)
        print(
            f"{name:<14} {best.rate:>10.0f} {best.percentile(50):>8.2f} "
            f"{best.percentile(99):>8.2f}   {rounds}"
        )
    for name in ("kit sink", "kit via flask"):
        print(f"ratio {name} / bare flask: {medians[name] / medians['bare flask']:.2f}")


if __name__ == "__main__":
    main()
