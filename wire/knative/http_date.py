"""HTTP-dates (as in `Retry-After`) read the way Go's `net/http.ParseTime` reads them.

Knative's dispatcher parses a `Retry-After` date with `http.ParseTime`, which accepts exactly
three layouts (RFC 9110 section 5.6.7): the IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the
obsolete RFC 850 form `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`.
Day and month names match case-insensitively, as Go's time.Parse does; the rest is literal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LONG_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
_MONTH = r"(?P<month>[A-Za-z]{3})"

_IMF_FIXDATE = re.compile(
    rf"(?P<weekday>[A-Za-z]{{3}}), (?P<day>\d{{2}}) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT"
)
_RFC850 = re.compile(
    rf"(?P<weekday>[A-Za-z]+), (?P<day>\d{{2}})-{_MONTH}-(?P<year>\d{{2}}) {_TIME} GMT"
)
_ASCTIME = re.compile(
    rf"(?P<weekday>[A-Za-z]{{3}}) {_MONTH}  ?(?P<day>\d{{1,2}}) {_TIME} (?P<year>\d{{4}})"
)


def parse_http_date(text: str) -> datetime | None:
    """The UTC datetime an HTTP-date names, or None when it is not one of the three layouts."""
    for layout, weekdays in ((_IMF_FIXDATE, _DAYS), (_RFC850, _LONG_DAYS), (_ASCTIME, _DAYS)):
        match = layout.fullmatch(text)
        if match is None:
            continue
        if match["weekday"].lower() not in weekdays or match["month"].lower() not in _MONTHS:
            return None
        year = int(match["year"])
        if len(match["year"]) == 2:
            # Go's two-digit year rule: 69-99 are 19xx, 00-68 are 20xx.
            year += 1900 if year >= 69 else 2000
        try:
            return datetime(
                year,
                _MONTHS.index(match["month"].lower()) + 1,
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"]),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    return None
