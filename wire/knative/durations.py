"""ISO-8601 durations read exactly as Knative reads them.

knative/eventing parses every duration of a DeliverySpec (`backoffDelay`, `timeout`,
`retryAfterMax`) with `period.Parse` from github.com/rickb777/date v1
(`pkg/apis/duck/v1/delivery_types.go` to admit it, `pkg/kncloudevents/retries.go` to use it),
then converts it with `Period.Duration()`. This module follows that parser, quirks included:

- `P`, an optional `Y`, `M`, `W`, `D` part, then optionally `T` and `H`, `M`, `S`; the parts
  may come in any order within their half, each at most once; `P0` is zero.
- A number is digits with an optional decimal point (`.` or `,`); only the first digit after
  the point counts (`PT0.25S` is 0.2 s), and only the last non-zero fraction may have one.
- A leading `+` is accepted. A leading `-` is accepted by Knative's parser but is rejected
  here: a negative delay, timeout or cap has no meaning, and Knative refuses a negative
  `retryAfterMax` anyway.
- Years are 365.2425 days, months a twelfth of that, weeks 7 days, days 24 hours.

Not reproduced: the library's per-field overflow limits (about 3276 units per field after
normalisation), which no delivery setting comes near.
"""

from __future__ import annotations

_DAY = 86_400
_YEAR = 31_556_952  # 365.2425 days, exactly
# Unit keys: `M` is months before the `T` and minutes after it.
_SECONDS_PER_UNIT = {
    "Y": _YEAR,
    "Mo": _YEAR // 12,
    "W": 7 * _DAY,
    "D": _DAY,
    "H": 3_600,
    "Mi": 60,
    "S": 1,
}
_DATE_UNITS = {"Y": "Y", "M": "Mo", "W": "W", "D": "D"}
_TIME_UNITS = {"H": "H", "M": "Mi", "S": "S"}
_NUMBER_CHARS = frozenset("0123456789.,")
_INT64_MAX = 2**63 - 1


class DurationError(ValueError):
    """A string that is not a duration Knative would accept (or is negative)."""


def parse_duration(text: object) -> float:
    """The number of seconds in an ISO-8601 duration such as `PT0.2S`, `PT1M30S` or `P1D`."""
    if not isinstance(text, str):
        raise DurationError(f"expected an ISO-8601 duration such as 'PT0.2S', not {text!r}")
    return _tenths_of_seconds(text) / 10


def _tenths_of_seconds(text: str) -> int:
    if text in ("", "-", "+"):
        raise DurationError("an empty string is not a duration")
    if text == "P0":
        return 0
    rest = text
    if rest[0] == "-":
        raise DurationError(f"{text!r}: negative durations are not allowed")
    if rest[0] == "+":
        rest = rest[1:]
    if not rest.startswith("P"):
        raise DurationError(f"{text!r}: expected 'P' at the start (e.g. 'PT0.2S')")
    rest = rest[1:]

    units_seen: set[str] = set()
    in_time_part = False
    previous_fraction = 0
    total = 0
    while rest:
        if rest[0] == "T":
            if in_time_part:
                raise DurationError(f"{text!r}: 'T' may occur only once")
            in_time_part = True
            rest = rest[1:]
            continue
        tenths, designator, rest = _next_field(rest, text)
        unit = _unit(designator, in_time_part, text)
        if unit in units_seen:
            raise DurationError(f"{text!r}: '{designator}' may occur only once")
        fraction = tenths % 10
        if previous_fraction and fraction:
            raise DurationError(f"{text!r}: only the last field may have a fraction")
        units_seen.add(unit)
        previous_fraction = fraction
        total += tenths * _SECONDS_PER_UNIT[unit]
    if not units_seen:
        raise DurationError(f"{text!r}: expected at least one of Y, M, W, D, H, M or S")
    return total


def _next_field(rest: str, text: str) -> tuple[int, str, str]:
    """The number (in tenths), its designator and what follows, from the front of `rest`."""
    end = 0
    while end < len(rest) and rest[end] in _NUMBER_CHARS:
        end += 1
    if end == len(rest):
        raise DurationError(f"{text!r}: a number must be followed by a designator")
    designator = rest[end]
    return _tenths(rest[:end], designator, text), designator, rest[end + 1 :]


def _tenths(number: str, designator: str, text: str) -> int:
    point = number.find(".")
    if point < 0:
        point = number.find(",")
    if point < 0:
        return _integer(number, designator, text) * 10
    integer = _integer(number[:point], designator, text)
    decimals = number[point + 1 :]
    # Knative keeps one decimal digit and ignores the rest, whatever they are.
    fraction = _integer(decimals[:1], designator, text) if decimals else 0
    return integer * 10 + fraction


def _integer(digits: str, designator: str, text: str) -> int:
    if not digits or not digits.isascii() or not digits.isdigit():
        raise DurationError(f"{text!r}: expected a number before '{designator}'")
    value = int(digits)
    if value > _INT64_MAX:
        raise DurationError(f"{text!r}: the number before '{designator}' is too large")
    return value


def _unit(designator: str, in_time_part: bool, text: str) -> str:
    units = _TIME_UNITS if in_time_part else _DATE_UNITS
    if designator in units:
        return units[designator]
    other = _DATE_UNITS if in_time_part else _TIME_UNITS
    if designator in other:
        where = "after" if in_time_part else "before"
        raise DurationError(f"{text!r}: '{designator}' cannot occur {where} 'T'")
    raise DurationError(f"{text!r}: unexpected {designator!r} (designators are Y M W D T H M S)")
