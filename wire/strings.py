"""The CloudEvents 1.0.2 String rule, and how an error message may quote what a client sent.

A String is a sequence of Unicode characters without the control characters U+0000-U+001F and
U+007F-U+009F, the noncharacters, and the surrogates U+D800-U+DFFF (a lone surrogate is not a
character at all; it cannot even be written as UTF-8). The rule applies to every String
attribute, and the JSON APIs apply it to every string they take.
"""

from __future__ import annotations

import re

_NONCHARACTERS = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")
#: How much of a client's value an error message repeats.
QUOTE_CHARACTERS = 40


def string_problem(value: str) -> str | None:
    """What makes `value` break the String rule (for an error message), or None."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        kind = "a lone surrogate"
    elif code <= 0x1F or 0x7F <= code <= 0x9F:
        kind = "a control character"
    else:
        kind = "a Unicode noncharacter"
    return f"holds {kind} (U+{code:04X}) at character {found.start()}"


def is_valid_string(value: str) -> bool:
    """Whether `value` is a CloudEvents String."""
    return _FORBIDDEN.search(value) is None


def quote(value: object, limit: int = QUOTE_CHARACTERS) -> str:
    """A short, printable quotation of a client's value: its repr, cut after `limit` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value))} characters)"
