"""A fuzzing campaign against one target: examples sent over real sockets, checked, tallied.

Each hypothesis example is a list of requests laid out on a few parallel connections (pipelined
on each, `http_requests.connection_plans`); every request is a case. `Campaign.run` sends them,
checks every exchange and answer against `invariants` and the target's own expectations, then
lets the target check what it accepted (the broker's journal). `Tally` counts cases and
outcomes for the summary printed at the end of each test.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.fuzz.http_requests import RawRequest, connection_plans
from tests.fuzz.invariants import Context, Expectation, check_answer, check_exchange
from tests.support.process_memory import MIB, Memory, tree_memory
from tests.support.raw_http import Answer, run_plans

STRICT = os.environ.get("SHOP_STRICT") == "1"
#: Cases per target: 10,000 in CI (SHOP_STRICT=1), a tenth on a developer's machine.
CASES_PER_TARGET = 10_000 if STRICT else 1_000
#: Silence after which a connection that owes answers counts as hung.
ANSWER_SECONDS = 5.0


class Target(Protocol):
    """What a campaign needs from a target's rules (event_targets, json_apis)."""

    name: str

    def start_example(self) -> None: ...
    def prepare(self, request: RawRequest) -> RawRequest: ...
    def expect(self, request: RawRequest) -> Expectation: ...
    def check(self, request: RawRequest, answer: Answer, context: Context) -> None: ...


@dataclass
class Tally:
    """Cases run and how they ended."""

    target: str
    cases: int = 0
    examples: int = 0
    connections: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    memory_before: Memory | None = None
    memory_after: Memory | None = None

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        statuses = ", ".join(f"{key}: {value}" for key, value in sorted(self.statuses.items()))
        endings = ", ".join(f"{key}: {value}" for key, value in sorted(self.endings.items()))
        memory = ""
        if self.memory_before and self.memory_after:
            memory = (
                f"\n  memory: before {self.memory_before.describe()},"
                f" after {self.memory_after.describe()}"
            )
        return (
            f"fuzz {self.target}: {self.cases} cases in {self.examples} examples on"
            f" {self.connections} connections, {elapsed:.1f}s\n  by status: {statuses}"
            f"\n  connections: {endings}{memory}"
        )


@dataclass
class Campaign:
    """Runs examples against one address with one target's rules."""

    target: Any  # a Target; Any so that dataclasses with extra methods fit
    address: tuple[str, int]
    pid: int
    tally: Tally
    memory_growth_bound: int = 128 * MIB
    memory_limit: int | None = None

    def begin(self) -> None:
        self.tally.memory_before = tree_memory(self.pid)

    def run(self, requests: Sequence[RawRequest], connections: int) -> None:
        """Send one example and check everything about it."""
        target = self.target
        target.start_example()
        prepared = [target.prepare(request) for request in requests]
        layout = connection_plans(prepared, connections)
        exchanges = run_plans(
            self.address, [plan for _, plan in layout], answer_seconds=ANSWER_SECONDS
        )
        self.tally.examples += 1
        self.tally.connections += len(layout)
        complete = True
        for (group, _), exchange in zip(layout, exchanges, strict=True):
            self._count(group, exchange)
            context = Context(group, exchange)
            check_exchange(group, exchange)
            complete = complete and not exchange.reset and not exchange.timed_out
            for request, answer in zip(group, exchange.answers, strict=False):
                expectation = target.expect(request)
                check_answer(request, answer, expectation, context)
                target.check(request, answer, context)
        finish = getattr(target, "finish_example", None)
        if finish is not None:
            finish(complete)

    def _count(self, group: Sequence[RawRequest], exchange: Any) -> None:
        self.tally.cases += len(group)
        for answer in exchange.answers:
            self.tally.statuses[str(answer.status)] += 1
        missing = len(group) - len(exchange.answers)
        if missing > 0:
            self.tally.statuses["no answer (closed)"] += missing
        ending = (
            "timed out"
            if exchange.timed_out
            else "reset"
            if exchange.reset
            else "closed by the server"
            if exchange.closed
            else "kept open"
        )
        self.tally.endings[ending] += 1

    def check_memory(self) -> None:
        """The target's memory stayed within the stated bounds over the campaign."""
        before = self.tally.memory_before
        assert before is not None
        after = tree_memory(self.pid)
        self.tally.memory_after = after
        assert after.rss - before.rss <= self.memory_growth_bound, (
            f"{self.tally.target}: RSS grew by {(after.rss - before.rss) / MIB:.1f} MiB, more than"
            f" {self.memory_growth_bound / MIB:.0f} MiB ({before.describe()} -> {after.describe()})"
        )
        if self.memory_limit is not None:
            assert after.peak <= self.memory_limit, (
                f"{self.tally.target}: peak RSS {after.peak / MIB:.1f} MiB is over the container's"
                f" memory limit of {self.memory_limit / MIB:.0f} MiB"
            )
