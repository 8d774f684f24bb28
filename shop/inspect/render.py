"""Plain-text tables for the terminal: columns as wide as their widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; None shows as '-'."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    lines = [_line(headers, widths)] + [_line(row, widths) for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split())


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        value.ljust(width) for value, width in zip(values, widths, strict=True)
    ).rstrip()
