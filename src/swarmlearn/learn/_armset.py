"""A compiled, incrementally updated view of one candidate set, for fast selection.

Scoring a candidate needs its arm's counts and the learned bonus. Most of
that is stable between two decisions: the transition and n-gram part of the
bonus changes only when an episode ends, and an arm's counts change only
when that arm was played. An :class:`ArmSet` caches, per arm (Python lists,
which beat NumPy element access at these sizes),

* ``N``: the (scaled) visit weight,
* ``A``: the arm's score without the UCB exploration term (success rate + w·bonus),
* ``B``: ``1/√N`` (the exploration term is ``k·B`` with one ``k`` for all arms),
* ``G``: the greedy score ``(s+1)/(s+f+2) + w·bonus``,
* ``TA``, ``TB``, ``W``: Thompson's Beta parameters and ``w·bonus``,

and :meth:`sync` refreshes only the arms the statistics' update log names
since the last call. Anything larger (an episode end, decay, eviction, a new
arm appearing) bumps the statistics' ``epoch`` and forces a rebuild, which
also bumps :attr:`ArmSet.version`. ``changes`` lists the indices refreshed
since the last version bump (Thompson's pre-drawn samples use it to know
which arms' draws went stale). With many arms, ``A`` and ``B`` are mirrored
in NumPy arrays so that UCB1 scores them in two vector operations.

The numbers are exactly those of the plain formulas (a test checks it); this
is only about not recomputing what did not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt
from typing import Any

import numpy as np

from swarmlearn.core.actions import Candidate
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.stats import LearnedStats

__all__ = ["VECTOR_ARMS", "ArmSet"]

VECTOR_ARMS = 40  # from this many arms on, UCB1 scores with NumPy (measured crossover ~30)
_MAX_CHANGES = 4096


class ArmSet:
    """Cached per-arm quantities for one (candidates, history tail) pair."""

    __slots__ = ("A", "B", "G", "N", "TA", "TB", "W", "_bonus", "_c", "a_vec", "b_vec", "cands",
                 "changes", "epoch", "index", "keys", "seen", "static", "tail", "total",
                 "unvisited", "version")

    def __init__(self, cands: Sequence[Candidate], tail: tuple[str, ...], bonus: LearnedBonus,
                 consts: tuple[float, float, float, float, float, float]) -> None:
        self.cands = cands
        self._bonus = bonus
        self.tail = tail
        self.keys = [(c.context, c.action.name) for c in cands]
        self.index: dict[Any, list[int]] = {}
        for i, k in enumerate(self.keys):
            self.index.setdefault(k, []).append(i)
        self._c = consts
        self.version = 0
        self.a_vec: np.ndarray[Any, np.dtype[np.float64]] | None = None
        self.b_vec: np.ndarray[Any, np.dtype[np.float64]] | None = None
        self.rebuild(bonus.stats)

    def rebuild(self, stats: LearnedStats) -> None:
        den_inv = self._c[5]
        static = self._bonus.static
        self.static = [static(self.tail, c) * den_inv for c in self.cands]
        n = len(self.keys)
        self.N, self.A, self.B, self.G = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
        self.TA, self.TB, self.W = [1.0] * n, [1.0] * n, [0.0] * n
        self.total = 0.0
        self.unvisited = n  # each arm found visited below takes one off
        for i in range(n):
            self._set(i, stats)
        if n >= VECTOR_ARMS:
            self.a_vec, self.b_vec = np.array(self.A), np.array(self.B)
        self.changes: list[int] = []
        self.version += 1
        self.epoch = stats.epoch
        self.seen = stats.arm_log_base + len(stats.arm_log)

    def _set(self, i: int, stats: LearnedStats) -> None:
        w, _, _, cw, prior, den_inv = self._c
        scale = stats.scale
        c = stats.contexts.get(self.keys[i])
        s, f = (c[0], c[1]) if c is not None else (0.0, 0.0)
        n = s + f
        old = self.N[i]
        if old == 0.0:
            if n > 0.0:
                self.unvisited -= 1
        elif n == 0.0:
            self.unvisited += 1
        self.total += n - old
        self.N[i] = n
        # w·(static + cw·conf·value / Σweights), the contextual part written out
        bonus_w = w * (self.static[i] + cw * (s - f) / (n + prior * scale) * den_inv)
        if n > 0.0:
            self.A[i] = s / n + bonus_w
            self.B[i] = 1.0 / sqrt(n)
        else:
            self.A[i] = self.B[i] = 0.0
        ts, tf = s / scale, f / scale
        self.G[i] = (ts + 1.0) / (ts + tf + 2.0) + bonus_w
        self.TA[i], self.TB[i], self.W[i] = ts + 1.0, tf + 1.0, bonus_w

    def sync(self, stats: LearnedStats) -> None:
        """Bring the cache up to date with ``stats`` (incrementally when possible)."""
        if stats.epoch != self.epoch:
            self.rebuild(stats)
            return
        base, log = stats.arm_log_base, stats.arm_log
        end = base + len(log)
        seen = self.seen
        if seen == end:
            return
        if seen < base or end - seen > len(self.keys) or len(self.changes) > _MAX_CHANGES:
            self.rebuild(stats)
            return
        index, changes = self.index, self.changes
        a_vec, b_vec = self.a_vec, self.b_vec
        for key in (log[-1],) if end - seen == 1 else log[seen - base:]:
            hit = index.get(key)
            if hit is not None:
                for i in hit:
                    self._set(i, stats)
                    changes.append(i)
                    if a_vec is not None and b_vec is not None:
                        a_vec[i], b_vec[i] = self.A[i], self.B[i]
        self.seen = end
