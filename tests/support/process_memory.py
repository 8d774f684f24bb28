"""How much memory a process and its children hold, from /proc (Linux): RSS now and at its peak."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    """Resident set sizes in bytes: now (VmRSS) and the high-water mark (VmHWM)."""

    rss: int
    peak: int

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.rss + other.rss, self.peak + other.peak)

    def describe(self) -> str:
        return f"RSS {self.rss / MIB:.1f} MiB (peak {self.peak / MIB:.1f} MiB)"


def process_memory(pid: int) -> Memory:
    """One process's RSS and peak RSS; zero for a process that is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return Memory(0, 0)
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return Memory(values.get("VmRSS", 0), values.get("VmHWM", 0))


def children(pid: int) -> list[int]:
    """The direct children of a process (a gunicorn master's workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree_memory(pid: int) -> Memory:
    """A process and its descendants together (counting shared pages in each: an upper bound)."""
    total = process_memory(pid)
    for child in children(pid):
        total = total + tree_memory(child)
    return total
