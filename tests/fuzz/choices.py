"""Choices for building one fuzz request: the shape drawn by hypothesis, the details seeded.

Hypothesis spends some tens of microseconds on every draw, and a request built from fifty
draws costs milliseconds: more than sending it. So a request's *shape* (which kind of request,
mode, mutation, framing, delivery: what decides the expected answer) is drawn by hypothesis,
and shrinks, each option list ordered plainest first; its *details* (which of several equivalent
values, positions, tags) come from a `random.Random` seeded by one more draw, so a failing
example is still reproduced exactly and shrinks to its plainest shape.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

SEEDS = st.integers(0, 2**32 - 1)
_STRATEGIES: dict[int, tuple[Sequence[object], st.SearchStrategy[object]]] = {}


def _sampled(options: Sequence[T]) -> st.SearchStrategy[T]:
    """One strategy per option list (building one per draw would cost as much as the draw)."""
    cached = _STRATEGIES.get(id(options))
    if cached is None or cached[0] is not options:
        cached = (options, st.sampled_from(options))
        _STRATEGIES[id(options)] = cached
    return cached[1]  # type: ignore[return-value]


class Choices:
    """What one request is made of: `pick` a shape (hypothesis), `detail` a detail (seeded)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw
        self.rng = random.Random(draw(SEEDS))

    def pick(self, options: Sequence[T]) -> T:
        """A choice that shapes the request; the first option is what it shrinks to."""
        return self._draw(_sampled(options))

    def one_in(self, options: Sequence[bool]) -> bool:
        """`pick` from a tuple of booleans such as (False,) * 9 + (True,): True one time in ten."""
        return self._draw(_sampled(options))

    def detail(self, options: Sequence[T]) -> T:
        """A choice among equivalent options."""
        return options[self.rng.randrange(len(options))]

    def number(self, low: int, high: int) -> int:
        """A detail number in [low, high]."""
        return self.rng.randint(low, high)

    def tag(self, size: int = 6) -> str:
        """A short random tag that keeps ids and emails apart."""
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(size))


ONE_IN_2 = (False, True)
ONE_IN_4 = (False,) * 3 + (True,)
ONE_IN_6 = (False,) * 5 + (True,)
ONE_IN_10 = (False,) * 9 + (True,)
