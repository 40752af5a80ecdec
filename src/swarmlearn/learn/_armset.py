"""The numbers of one decision's candidates, for fast selection.

Scoring a candidate needs its arm's counts (the ``contexts`` table of
:class:`LearnedStats`) and the learned bonus (transitions and n-grams of the
worker's history tail, plus the contextual signal). An ArmSet holds, per
candidate,

* ``N``: the (scaled) visit weight,
* ``A``: the arm's score without the UCB exploration term (success rate + w·bonus),
* ``B``: ``1/√N`` (the exploration term is ``k·B`` with one ``k`` for all arms),
* ``G``: the greedy score ``(s+1)/(s+f+2) + w·bonus``,
* ``TA``, ``TB``, ``W``: Thompson's Beta parameters and ``w·bonus``,

computed straight from the statistics' tables when the decision is made: a
handful of dict lookups per candidate and nothing cached between decisions,
so nothing can go stale as candidates, history tails and counts move (a
swarm makes a new candidate list and a new tail at nearly every decision; a
cache keyed by them never hit). Selection asks the set itself: ``ucb(k,
rank)`` and ``greedy(rank)`` return the best index, ties going to the learned
action order ``rank`` (then the listed order), ``first_unvisited(rank)`` the
unvisited arm to try first, ``thompson(sampler)`` the best draw. The policies
call :func:`picker`'s ``pick`` instead: the same numbers and the same choice in
one call, without an ArmSet object.

Two implementations with one interface: the C one (``learn/_fast.c``, built
by ``pip install``; a decision is one C call) and :class:`PyArmSet` in plain
Python, used when the extension was not built or ``SWARMLEARN_PURE_PYTHON=1``.
Their numbers are the same bit for bit (tests check both against each other
and against the plain formulas); only Thompson's draws come from different,
equally exact, samplers. With ``learning_weight = 0`` the bonus is not
computed at all (both give 0.0), and with both sequence weights 0 the
transition and n-gram lookups are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import islice
from math import log, sqrt
from typing import Any, Protocol

import numpy as np

from swarmlearn.core.actions import Candidate
from swarmlearn.core.events import ActionEvent
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.stats import token

__all__ = ["FAST", "GREEDY", "THOMPSON", "UCB1", "ArmSetLike", "ArmSetMaker", "PickFn",
           "PyArmSet", "armset_maker", "picker", "sampler_for", "tail_of", "uses_c"]

Consts = tuple[float, float, float, float, float, float]  # w, tw, nw, cw, prior, 1/Σweights


class ArmSetLike(Protocol):
    """What the selection policies use of an ArmSet."""

    @property
    def cands(self) -> Sequence[Candidate]: ...
    @property
    def N(self) -> list[float]: ...
    @property
    def G(self) -> list[float]: ...
    @property
    def total(self) -> float: ...
    @property
    def unvisited(self) -> int: ...
    def ucb(self, k: float, rank: Mapping[str, int] | None, /) -> int: ...
    def ucb1(self, c: float, rank: Mapping[str, int] | None, /) -> int: ...
    def ucb_scores(self, k: float, /) -> list[float]: ...
    def greedy(self, rank: Mapping[str, int] | None, /) -> int: ...
    def first_unvisited(self, rank: Mapping[str, int] | None, /) -> int: ...
    def thompson(self, sampler: Any, /) -> int: ...


class PyArmSet:
    """The ArmSet in plain Python lists (the reference; the fallback without C)."""

    def __init__(self, cands: Sequence[Candidate], tail: tuple[str, ...], bonus: LearnedBonus,
                 consts: Consts) -> None:
        self.cands = cands
        w, tw, nw, cw, prior, den_inv = consts
        stats = bonus.stats
        scale, contexts = stats.scale, stats.contexts
        want_static = w != 0.0 and (tw != 0.0 or nw != 0.0)
        n = len(cands)
        self.N, self.A, self.B, self.G = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
        self.TA, self.TB, self.W = [1.0] * n, [1.0] * n, [0.0] * n
        self.total = 0.0
        self.scale = scale
        self.unvisited = 0
        for i, cand in enumerate(cands):
            c = contexts.get((cand.context, cand.action.name))
            s, f = (c[0], c[1]) if c is not None else (0.0, 0.0)
            bonus_w = 0.0
            if w != 0.0:
                st = bonus.static(tail, cand) if want_static else 0.0
                bonus_w = w * (st * den_inv + cw * (s - f) / (s + f + prior * scale) * den_inv)
            nn = s + f
            self.N[i] = nn
            self.total += nn
            if nn > 0.0:
                self.A[i] = s / nn + bonus_w
                self.B[i] = 1.0 / sqrt(nn)
            else:
                self.unvisited += 1
            ts, tf = s / scale, f / scale
            self.G[i] = (ts + 1.0) / (ts + tf + 2.0) + bonus_w
            self.TA[i], self.TB[i], self.W[i] = ts + 1.0, tf + 1.0, bonus_w

    # -- selection ----------------------------------------------------------------------
    def ucb1(self, c: float, rank: Mapping[str, int] | None) -> int:
        """UCB1's choice: the first unvisited arm, else the best ``A + k·B`` with
        ``k = c·√(ln(max(total/scale, 1))·scale)`` (the scale undoes the decay units)."""
        if self.unvisited:
            return self.first_unvisited(rank)
        k = c * sqrt(log(max(self.total / self.scale, 1.0)) * self.scale)
        return self.ucb(k, rank)

    def ucb(self, k: float, rank: Mapping[str, int] | None) -> int:
        return self._best(self.ucb_scores(k), rank)

    def ucb_scores(self, k: float) -> list[float]:
        return [a + b * k for a, b in zip(self.A, self.B, strict=True)]

    def greedy(self, rank: Mapping[str, int] | None) -> int:
        return self._best(self.G, rank)

    def first_unvisited(self, rank: Mapping[str, int] | None) -> int:
        unvisited = [j for j, n in enumerate(self.N) if n == 0.0]
        if not rank:
            return unvisited[0] if unvisited else 0
        far = len(rank)
        return min(unvisited, key=lambda j: (rank.get(self.cands[j].action.name, far), j),
                   default=0)

    def _best(self, scores: list[float], rank: Mapping[str, int] | None) -> int:
        """Index of the best score; ties go to the learned action order, then the listed one."""
        top = max(scores, default=0.0)
        tied = [j for j, v in enumerate(scores) if v == top]
        if len(tied) <= 1 or not rank:
            return tied[0] if tied else 0
        far = len(rank)
        return min(tied, key=lambda j: (rank.get(self.cands[j].action.name, far), j))

    def thompson(self, sampler: np.random.Generator) -> int:
        scores = sampler.beta(self.TA, self.TB)
        scores += self.W
        return int(scores.argmax())

    @staticmethod
    def sampler(seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)


try:
    from swarmlearn.learn import _fast
except ImportError:  # not built (no C compiler at install time): plain Python it is
    _fast = None  # type: ignore[assignment]

FAST = _fast is not None and os.environ.get("SWARMLEARN_PURE_PYTHON", "") in ("", "0")


ArmSetMaker = Callable[[Sequence[Candidate], Sequence["str | ActionEvent"]], ArmSetLike]
#: ``pick(kind, arg, cands, steps, rank)`` → the chosen index (see :func:`picker`)
PickFn = Callable[[int, Any, Sequence[Candidate], Sequence["str | ActionEvent"],
                   Mapping[str, int] | None], int]

#: the kinds of :func:`picker`'s choice: UCB1 (arg: c), Greedy / the Beta mean, Thompson
#: (arg: a sampler from :func:`sampler_for`)
UCB1, GREEDY, THOMPSON = 0, 1, 2


def armset_maker(bonus: LearnedBonus, consts: Consts, memo: dict[Any, Any], *,
                 fast: bool | None = None) -> ArmSetMaker:
    """``make(cands, steps)`` → an ArmSet: the C one when built (and ``fast`` is not
    False), else the Python one.

    ``steps``: the worker's recent steps, oldest first, as step tokens or as its
    ActionEvents (the last three count). ``memo``: a dict the caller keeps for
    the candidates' keys and step tokens (pure values; bounded). The C maker is
    a ``functools.partial`` of one C function: a decision is one call.
    """
    if uses_c(fast):
        return partial(_fast.arms, bonus.stats, memo, *consts)

    def make(cands: Sequence[Candidate], steps: Sequence[str | ActionEvent]) -> ArmSetLike:
        return PyArmSet(cands, tail_of(steps), bonus, consts)

    return make


def picker(bonus: LearnedBonus, consts: Consts, memo: dict[Any, Any], *,
           fast: bool | None = None) -> PickFn:
    """``pick(kind, arg, cands, steps, rank)`` → the index ``make(cands, steps)``'s
    ``ucb1(arg, rank)`` (kind UCB1), ``greedy(rank)`` (GREEDY) or ``thompson(arg)``
    (THOMPSON) would choose. In C it is one call that makes no ArmSet object (a
    ``functools.partial`` of ``_fast.pick``); in Python it makes the PyArmSet and asks it.
    """
    if uses_c(fast):
        return partial(_fast.pick, bonus.stats, memo, *consts)

    def pick(kind: int, arg: Any, cands: Sequence[Candidate],
             steps: Sequence[str | ActionEvent], rank: Mapping[str, int] | None) -> int:
        arms = PyArmSet(cands, tail_of(steps), bonus, consts)
        if kind == UCB1:
            return arms.ucb1(arg, rank)
        if kind == GREEDY:
            return arms.greedy(rank)
        return arms.thompson(arg)

    return pick


def tail_of(steps: Sequence[str | ActionEvent]) -> tuple[str, ...]:
    """The last three steps as tokens, oldest first."""
    last = list(islice(reversed(steps), 3))
    last.reverse()
    return tuple([e if isinstance(e, str) else token(e.action, e.context) for e in last])


def sampler_for(fast: bool, seed: int) -> Any:
    """A Thompson sampler that an ArmSet made with this ``fast`` flag accepts."""
    if fast and _fast is not None:
        return _fast.Rng(seed)
    return PyArmSet.sampler(seed)


def uses_c(fast: bool | None) -> bool:
    """Whether ``make_armset(..., fast=fast)`` makes the C ArmSet."""
    return bool((FAST if fast is None else fast) and _fast is not None)

