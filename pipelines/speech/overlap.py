"""One voice, one line at a time: the overlap rule of timed scripts, checked in one sweep.

Two lines overlap when the later one starts before the earlier one ends (touching, ``end ==
next start``, is fine). Overlapping lines are allowed only when both name a voice and the
voices differ (two performers talking over each other); a line naming nobody may overlap
nothing, since nothing says it is another voice. Subtitle scripts
(``pipelines.speech.script``) and reel dialogue tables (``pipelines.reel.dialogue``) both
hold to it.

A table may hold 10^5 lines, so this is not a comparison of every pair: in time order, of the
earlier lines a line may not overlap (its own voice's and the unnamed ones; every line, for an
unnamed one) only the one that ends last can overlap it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TypeVar

T = TypeVar("T")


def first_overlap(lines: Iterable[T], *, start: Callable[[T], Fraction],
                  end: Callable[[T], Fraction], voice: Callable[[T], str | None]
                  ) -> tuple[T, T] | None:
    """``(earlier, later)``: the first line, in order of start (ties: given order), that
    overlaps an earlier line it may not overlap, and that earlier line (of those, the one
    that ends last); ``None`` when the script holds to the rule."""
    last_of: dict[str | None, T] = {}  # per voice (None: unnamed), the line that ends last
    last: T | None = None
    ordered = sorted(enumerate(lines), key=lambda item: (start(item[1]), item[0]))
    for _, line in ordered:
        who = voice(line)
        candidates = [last] if who is None else [last_of.get(who), last_of.get(None)]
        # Of the candidates, the one ending last decides; earlier ones end sooner.
        live = [c for c in candidates if c is not None and end(c) > start(line)]
        if live:
            return max(live, key=end), line
        same = last_of.get(who)
        if same is None or end(line) > end(same):
            last_of[who] = line
        if last is None or end(line) > end(last):
            last = line
    return None
