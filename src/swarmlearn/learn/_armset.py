"""A compiled, incrementally updated view of one candidate set, for fast selection.

Scoring a candidate needs its arm's counts and the learned bonus. Most of
that is stable between two decisions: the transition and n-gram part of the
bonus changes only when an episode ends, and an arm's counts change only
when that arm was played. An ArmSet caches, per arm,

* ``N``: the (scaled) visit weight,
* ``A``: the arm's score without the UCB exploration term (success rate + w·bonus),
* ``B``: ``1/√N`` (the exploration term is ``k·B`` with one ``k`` for all arms),
* ``G``: the greedy score ``(s+1)/(s+f+2) + w·bonus``,
* ``TA``, ``TB``, ``W``: Thompson's Beta parameters and ``w·bonus``,

and ``sync`` refreshes only the arms the statistics' update log names since
the last call. Anything larger (an episode end, decay, eviction, a new arm
appearing) bumps the statistics' ``epoch`` and forces a rebuild, which also
bumps ``version``. Selection asks the set itself: ``ucb(k)`` and ``greedy()``
return the first best index and how many arms tie with it (ties are then
resolved by the learned action order), ``thompson(sampler)`` the best draw.

Two implementations with one interface: :class:`FastArmSet` keeps the numbers
in C arrays (``learn/_fast.c``, built by ``pip install``; the per-decision
work is a few C loops) and :class:`PyArmSet` in Python lists, used when the
extension was not built or ``SWARMLEARN_PURE_PYTHON=1``. Their numbers are
the same bit for bit, and equal to the plain formulas (tests check both);
only Thompson's draws come from different, equally exact, samplers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import repeat
from math import sqrt
from operator import add, mul
from typing import Any, Protocol

import numpy as np

from swarmlearn.core.actions import Candidate
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.stats import LearnedStats

__all__ = ["FAST", "ArmSetLike", "PyArmSet", "make_armset", "sampler_for"]

Consts = tuple[float, float, float, float, float, float]  # w, tw, nw, cw, prior, 1/Σweights


class ArmSetLike(Protocol):
    """What the selection policies use of an ArmSet."""

    cands: Sequence[Candidate]
    tail: tuple[str, ...]
    keys: list[tuple[str, str]]
    version: int

    @property
    def N(self) -> list[float]: ...
    @property
    def G(self) -> list[float]: ...
    @property
    def total(self) -> float: ...
    @property
    def unvisited(self) -> int: ...
    def sync(self, stats: LearnedStats) -> None: ...
    def ucb(self, k: float) -> tuple[int, int]: ...
    def ucb_scores(self, k: float) -> list[float]: ...
    def greedy(self) -> tuple[int, int]: ...
    def thompson(self, sampler: Any) -> int: ...
    def sampler(self, seed: int) -> Any: ...


class _Common:
    """Keys, index and the cached static bonus: the part both implementations share."""

    def _setup(self, cands: Sequence[Candidate], tail: tuple[str, ...], bonus: LearnedBonus,
               consts: Consts) -> None:
        self.cands = cands
        self.tail = tail
        self._bonus = bonus
        self._c = consts
        self.keys = [(c.context, c.action.name) for c in cands]
        index: dict[Any, list[int]] = {}
        for i, k in enumerate(self.keys):
            index.setdefault(k, []).append(i)
        self.index = {k: tuple(v) for k, v in index.items()}
        self.version = 0

    def _static(self) -> list[float]:
        static, den_inv = self._bonus.static, self._c[5]
        return [static(self.tail, c) * den_inv for c in self.cands]


class PyArmSet(_Common):
    """The ArmSet in plain Python lists."""

    def __init__(self, cands: Sequence[Candidate], tail: tuple[str, ...], bonus: LearnedBonus,
                 consts: Consts) -> None:
        self._setup(cands, tail, bonus, consts)
        self.rebuild(bonus.stats)

    def rebuild(self, stats: LearnedStats) -> None:
        self.static = self._static()
        n = len(self.keys)
        self.N, self.A, self.B, self.G = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
        self.TA, self.TB, self.W = [1.0] * n, [1.0] * n, [0.0] * n
        self.total = 0.0
        self.unvisited = n  # each arm found visited below takes one off
        for i in range(n):
            self._set(i, stats)
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
        if seen < base or end - seen > len(self.keys):
            self.rebuild(stats)
            return
        index = self.index
        for key in log[seen - base:]:
            hit = index.get(key)
            if hit is not None:
                for i in hit:
                    self._set(i, stats)
        self.seen = end

    # -- selection ----------------------------------------------------------------------
    def ucb(self, k: float) -> tuple[int, int]:
        return _argmax_ties(self.ucb_scores(k))

    def ucb_scores(self, k: float) -> list[float]:
        return list(map(add, self.A, map(mul, self.B, repeat(k))))

    def greedy(self) -> tuple[int, int]:
        return _argmax_ties(self.G)

    def thompson(self, sampler: np.random.Generator) -> int:
        scores = sampler.beta(self.TA, self.TB)
        scores += self.W
        return int(scores.argmax())

    @staticmethod
    def sampler(seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)


def _argmax_ties(scores: list[float]) -> tuple[int, int]:
    top = max(scores)
    return scores.index(top), scores.count(top)


try:
    from swarmlearn.learn import _fast
except ImportError:  # not built (no C compiler at install time): plain Python it is
    _fast = None  # type: ignore[assignment]

FAST = _fast is not None and os.environ.get("SWARMLEARN_PURE_PYTHON", "") in ("", "0")

if _fast is not None:

    class FastArmSet(_Common, _fast.ArmCore):
        """The ArmSet in C arrays (``learn/_fast.c``)."""

        def __init__(self, cands: Sequence[Candidate], tail: tuple[str, ...],
                     bonus: LearnedBonus, consts: Consts) -> None:
            self._setup(cands, tail, bonus, consts)
            self.rebuild(bonus.stats)

        def rebuild(self, stats: LearnedStats) -> None:
            w, _, _, cw, prior, den_inv = self._c
            self._reset(len(self.keys), w, cw, prior, den_inv, stats.epoch,
                        stats.arm_log_base + len(stats.arm_log), self.index, self._static())
            self._load(stats.contexts, self.keys, stats.scale)
            self.version += 1

        @staticmethod
        def sampler(seed: int) -> _fast.Rng:
            return _fast.Rng(seed)


def make_armset(cands: Sequence[Candidate], tail: tuple[str, ...], bonus: LearnedBonus,
                consts: Consts, *, fast: bool | None = None) -> ArmSetLike:
    """An ArmSet: the C one when built (and ``fast`` is not False), else the Python one."""
    if (FAST if fast is None else fast) and _fast is not None:
        return FastArmSet(cands, tail, bonus, consts)
    return PyArmSet(cands, tail, bonus, consts)


def sampler_for(armset: ArmSetLike, seed: int) -> Any:
    """A Thompson sampler that ``armset.thompson`` accepts."""
    return armset.sampler(seed)
