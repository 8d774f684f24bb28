"""The mutation score per module, from the results mutmut left in mutants/ (`make mutation`).

Prints a Markdown table (module, killed, survived, timeout, no tests, not checked, total, score)
and, with --survivors, the name of every mutant that was not killed. The score is
killed / (total - not checked), timeouts counted as killed (the mutant hung the tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")
COLUMNS = ("killed", "survived", "timeout", "no tests", "not checked")


def results(root: Path) -> dict[str, dict[str, str]]:
    """Status of each mutant, by module (dotted name)."""
    by_module: dict[str, dict[str, str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        relative = meta.relative_to(root).with_suffix("").with_suffix("")
        module = ".".join(relative.parts)
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        if exit_codes:
            by_module[module] = {
                name: status_by_exit_code[code] for name, code in sorted(exit_codes.items())
            }
    return by_module


def table(by_module: dict[str, dict[str, str]]) -> list[str]:
    lines = [
        "| module | " + " | ".join(COLUMNS) + " | total | score |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for module, statuses in by_module.items():
        counts = Counter(statuses.values())
        checked = len(statuses) - counts["not checked"]
        killed = counts["killed"] + counts["timeout"]
        score = f"{100 * killed / checked:.1f}%" if checked else "-"
        cells = " | ".join(str(counts[column]) for column in COLUMNS)
        lines.append(f"| `{module}` | {cells} | {len(statuses)} | {score} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every mutant not killed")
    parser.add_argument("--root", type=Path, default=MUTANTS, help="mutmut's folder (mutants/)")
    args = parser.parse_args(argv)
    by_module = results(args.root)
    if not by_module:
        print(f"no mutation results under {args.root}/: run `make mutation` first", file=sys.stderr)
        return 1
    print("\n".join(table(by_module)))
    if args.survivors:
        for statuses in by_module.values():
            for name, status in statuses.items():
                if status not in ("killed", "timeout"):
                    print(f"{status}: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
