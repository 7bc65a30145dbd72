"""Decay without flicker, and the one place score totals are rounded. Pure.

A hit's age, which the decay rule (leads/scoring_rules.py: ``Decay.factor``) reads, is the time since its
event outside two kinds of grace window (``Decay.grace_days``, the ``scoring.decay_grace_days`` setting):
- its own: the grace period after its event (fresh points keep their full value);
- the lead's *holds*: the grace period after any touchpoint that earned points and left the lead at or above
  the motivation threshold (leads/scoring.py decides them). Within a hold nothing of the lead fades, older
  points included, so a lead that just became high-motivation (an MQL, with high ability) is not moved out of
  its quadrant by decay within that period, however its points were made up; only a touchpoint (negative
  points) or a profile change can.
The holds are a function of the event sequence, kept in the lead's state, so incremental scoring and a replay
agree. Totals are rounded by :func:`total`, so a lead at exactly the threshold compares the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

SCORE_DECIMALS = 6  # totals are rounded to this: float noise never decides a threshold
Holds = list[tuple[float, float]]  # [from, to) POSIX seconds; merged, ascending


def total(values: Iterable[float]) -> float:
    """A score total: exactly summed (order does not matter) and rounded to SCORE_DECIMALS, so the stored
    value, the explanation and the threshold comparison agree."""
    return round(math.fsum(values), SCORE_DECIMALS) + 0.0  # + 0.0: no -0.0


def hold(holds: Holds, start: float, end: float) -> None:
    """Add [start, end) to ``holds``; holds begin at events, in order, so only the last can overlap."""
    if holds and start <= holds[-1][1]:
        holds[-1] = (holds[-1][0], max(holds[-1][1], end))
    else:
        holds.append((start, end))


def held(holds: Holds, start: float, end: float) -> float:
    """Seconds of [start, end] within ``holds``.

    Every boundary is a POSIX time computed once (an event's time plus the grace period, for its own window
    and for a hold it starts alike): differences of such nearby floats are exact, so two points whose ages
    reach zero at the same instant do so at the same read time, however close to it."""
    total_held = 0.0
    for lo, hi in holds:
        part = min(hi, end) - max(lo, start)
        if part > 0:
            total_held += part
    return total_held


def factors(factor: Callable[[float], float], grace: float, holds: Holds, times: Sequence[float],
            now: float) -> list[float]:
    """The decay factor at ``now`` of points earned at each of ``times``."""
    if not grace:
        return [factor(now - at) for at in times]
    if not holds:
        return [factor(now - (at + grace)) for at in times]
    out = []
    for at in times:  # within its own window [at, at + grace) a point is fresh anyway: only later holds count
        fades_from = at + grace
        out.append(factor((now - fades_from) - held(holds, fades_from, now)) if now > fades_from else 1.0)
    return out
