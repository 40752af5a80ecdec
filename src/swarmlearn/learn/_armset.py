"""A compiled, incrementally updated view of one candidate set, for fast selection.

Scoring a candidate needs its arm's counts and the learned bonus. Most of
that is stable between two decisions: the transition and n-gram part of the
bonus changes only when an episode ends, and an arm's counts change only
when that arm was played. An :class:`ArmSet` caches, per arm,

* ``N``: the (scaled) visit weight,
* ``A``: the arm's score without the UCB exploration term (success rate + w·bonus),
* ``B``: ``1/√N`` (the exploration term is ``k·B`` with one ``k`` for all arms),
* ``G``: the greedy score ``(s+1)/(s+f+2) + w·bonus``,
* ``alpha``, ``beta``, ``w_arr``: Thompson's Beta parameters and ``w·bonus`` (numpy arrays),

and :meth:`sync` refreshes only the arms the statistics' update log names
since the last call. Anything larger (an episode end, decay, eviction, a new
arm appearing) bumps the statistics' ``epoch`` and forces a rebuild. The
numbers are exactly those of the plain formulas (a test checks it); this is
only about not recomputing what did not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from swarmlearn.core.actions import Candidate
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.stats import START, LearnedStats, token

__all__ = ["ArmSet", "static_bonus"]


def static_bonus(bonus: LearnedBonus, tail: Sequence[str], step: str) -> float:
    """The transition + n-gram part of the bonus numerator: Σ weight × confidence × value."""
    cfg = bonus.config
    prev = tail[-1] if tail else START
    t, g = bonus.transition(prev, step), bonus.ngram(tail, step)
    return (cfg.transition_weight * t.confidence * t.value
            + cfg.ngram_weight * g.confidence * g.value)


class ArmSet:
    """Cached per-arm quantities for one (candidates, history tail) pair."""

    __slots__ = ("A", "B", "G", "N", "_bonus", "_c", "alpha", "beta", "cands", "epoch", "index",
                 "keys", "seen", "static", "tail", "total", "unvisited", "w_arr")

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
        self.rebuild(bonus.stats)

    def rebuild(self, stats: LearnedStats) -> None:
        den_inv = self._c[5]
        self.static = [static_bonus(self._bonus, self.tail, token(k[1], k[0])) * den_inv
                       for k in self.keys]
        n = len(self.keys)
        self.N, self.A, self.B, self.G = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
        self.alpha, self.beta, self.w_arr = np.ones(n), np.ones(n), np.zeros(n)
        self.total = 0.0
        self.unvisited = n  # each arm found visited below takes one off
        for i in range(n):
            self._set(i, stats)
        self.epoch = stats.epoch
        self.seen = stats.arm_log_base + len(stats.arm_log)

    def _set(self, i: int, stats: LearnedStats) -> None:
        w, _, _, cw, prior, den_inv = self._c
        scale = stats.scale
        c = stats.contexts.get(self.keys[i])
        s, f = (c[0], c[1]) if c is not None else (0.0, 0.0)
        n = s + f
        old = self.N[i]
        if old == 0.0 and n > 0.0:
            self.unvisited -= 1
        elif old > 0.0 and n == 0.0:
            self.unvisited += 1
        self.total += n - old
        self.N[i] = n
        ctx = cw * (s - f) / (n + prior * scale) * den_inv  # cw·conf·value / Σweights
        bonus_w = w * (self.static[i] + ctx)
        if n > 0.0:
            self.A[i] = s / n + bonus_w
            self.B[i] = 1.0 / math.sqrt(n)
        else:
            self.A[i] = self.B[i] = 0.0
        ts, tf = s / scale, f / scale
        self.G[i] = (ts + 1.0) / (ts + tf + 2.0) + bonus_w
        self.alpha[i], self.beta[i], self.w_arr[i] = ts + 1.0, tf + 1.0, bonus_w

    def sync(self, stats: LearnedStats) -> None:
        """Bring the cache up to date with ``stats`` (incrementally when possible)."""
        if stats.epoch != self.epoch:
            self.rebuild(stats)
            return
        base, log = stats.arm_log_base, stats.arm_log
        end = base + len(log)
        if self.seen == end:
            return
        if self.seen < base or end - self.seen > len(self.keys):
            self.rebuild(stats)
            return
        index = self.index
        for key in log[self.seen - base:]:
            hit = index.get(key)
            if hit is not None:
                for i in hit:
                    self._set(i, stats)
        self.seen = end

