"""A compiled, incrementally updated view of one candidate set, for fast selection.

Scoring a candidate needs its arm's counts and the learned bonus. Most of
that is stable between two decisions: the transition and n-gram part of the
bonus changes only when an episode ends, and an arm's counts change only
when that arm was played. An :class:`ArmSet` caches, per arm,

* ``S``, ``F``, ``N``: the (scaled) success / failure / visit weights,
* ``A``: the arm's score without the UCB exploration term (success rate + w·bonus),
* ``B``: ``1/√N`` (the exploration term is ``k·B`` with one ``k`` for all arms),
* ``W``: ``w·bonus`` alone (Thompson adds it to its draw),
* ``G``: the greedy score ``(s+1)/(s+f+2) + w·bonus``,
* ``alpha``, ``beta``, ``w_arr``: Thompson's Beta parameters and ``W`` as numpy arrays,

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
from swarmlearn.learn.stats import START, LearnedStats, token

__all__ = ["ArmSet", "static_bonus"]


def static_bonus(stats: LearnedStats, tail: Sequence[str], step: str, tw: float, nw: float,
                 prior: float) -> float:
    """The transition + n-gram part of the bonus numerator (weight × confidence × value)."""
    action = step
    scale = stats.scale
    t = [START, START, START, *tail[-3:]]
    out = 0.0
    c = stats.transitions.get((t[-1], action))
    if c is not None:
        s, f = c[0] / scale, c[1] / scale
        out += tw * (s - f) / (s + f + prior)  # confidence × value = (s - f) / (n + prior)
    c = stats.ngrams4.get((t[-3], t[-2], t[-1], action))
    if c is None:
        c = stats.ngrams3.get((t[-2], t[-1], action))
    if c is not None:
        s, f = c[0] / scale, c[1] / scale
        out += nw * (s - f) / (s + f + prior)
    return out


class ArmSet:
    """Cached per-arm quantities for one (candidates, history tail) pair."""

    __slots__ = ("A", "B", "F", "G", "N", "S", "W", "_c", "alpha", "beta", "cands", "epoch",
                 "index", "keys", "seen", "static", "tail", "total", "unvisited", "w_arr")

    def __init__(self, cands: Sequence[Candidate], tail: tuple[str, ...], stats: LearnedStats,
                 consts: tuple[float, float, float, float, float, float]) -> None:
        self.cands = cands
        self.tail = tail
        self.keys = [(c.context, c.action.name) for c in cands]
        self.index: dict[Any, list[int]] = {}
        for i, k in enumerate(self.keys):
            self.index.setdefault(k, []).append(i)
        self._c = consts
        self.rebuild(stats)

    def rebuild(self, stats: LearnedStats) -> None:
        _, tw, nw, cw, prior, _ = self._c
        den = tw + nw + cw
        self.static = [
            static_bonus(stats, self.tail, token(k[1], k[0]), tw, nw, prior) / den if den else 0.0
            for k in self.keys
        ]
        n = len(self.keys)
        self.S, self.F, self.N = [0.0] * n, [0.0] * n, [0.0] * n
        self.A, self.B, self.W, self.G = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
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
        self.S[i], self.F[i], self.N[i] = s, f, n
        ctx = cw * (s - f) / (n + prior * scale) * den_inv  # cw·conf·value / Σweights
        bonus_w = w * (self.static[i] + ctx)
        self.W[i] = bonus_w
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

