"""`shop replay --until` and the question asked before sending many events again."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from shop.inspect.confirm import CONFIRM_ABOVE, confirmed
from shop.inspect.replay import until_bound


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_until_is_a_seq_or_a_time_given_an_offset() -> None:
    assert until_bound("42") == 42
    assert until_bound("2026-01-31T12:00:00Z") == "2026-01-31T12:00:00+00:00"
    local = until_bound("2026-01-31T12:00:00")
    assert isinstance(local, str) and datetime.fromisoformat(local).tzinfo is not None
    with pytest.raises(ValueError):
        until_bound("yesterday")


def test_a_few_events_go_without_asking() -> None:
    out = io.StringIO()
    assert confirmed(CONFIRM_ABOVE, "events", yes=False, stdin=io.StringIO(""), out=out)
    assert out.getvalue() == ""


def test_more_ask_on_a_terminal_and_need_yes_without_one() -> None:
    out = io.StringIO()
    many = CONFIRM_ABOVE + 1
    assert confirmed(many, "events", yes=False, stdin=_Terminal("y\n"), out=out)
    assert "send 11 events again? [y/N]" in out.getvalue()
    assert not confirmed(many, "events", yes=False, stdin=_Terminal("\n"), out=out)
    assert not confirmed(many, "events", yes=False, stdin=io.StringIO("y\n"), out=out)
    assert "pass --yes" in out.getvalue()
    assert confirmed(many, "events", yes=True, stdin=io.StringIO(""), out=out)
