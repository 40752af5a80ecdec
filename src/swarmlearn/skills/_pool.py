"""The Pareto-style candidate pool (GEPA's idea): keep every skill that is best on some
validation task, not only the single best, and start each step from one of them.

:func:`on_front` says whether a candidate beats every member on at least one
task; :func:`pick_parent` samples a member with probability proportional to the
number of tasks on which it is (one of) the best, with a seeded generator, so a
resumed run picks the same parent as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

__all__ = ["front_counts", "on_front", "pick_parent"]


def front_counts(scores: Sequence[Mapping[int, float]]) -> list[int]:
    """For each member, on how many tasks it has the top score (ties count for all)."""
    tasks = set().union(*scores) if scores else set()
    counts = [0] * len(scores)
    for t in tasks:
        top = max(s.get(t, 0.0) for s in scores)
        for i, s in enumerate(scores):
            counts[i] += s.get(t, 0.0) == top
    return counts


def on_front(candidate: Mapping[int, float], members: Sequence[Mapping[int, float]]) -> bool:
    """Whether ``candidate`` is strictly better than every member on some task."""
    return any(v > max((m.get(t, 0.0) for m in members), default=-1.0)
               for t, v in candidate.items())


def pick_parent(scores: Sequence[Mapping[int, float]], seed: int) -> int:
    counts = front_counts(scores)
    if not any(counts):
        return 0
    return random.Random(seed).choices(range(len(scores)), weights=counts, k=1)[0]
