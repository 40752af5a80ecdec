"""The learned-bonus provider: what history says about a candidate, in O(1).

Every query is a handful of dict lookups into :class:`LearnedStats` and
returns a value in [-1, 1] (positive: history says this helps) with a
confidence in [0, 1) that grows with the evidence (n / (n + prior)).
``combined`` mixes the transition, n-gram and contextual signals, each
weighted by its confidence and its configured weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swarmlearn._config import check_range
from swarmlearn.core.actions import Candidate
from swarmlearn.learn.stats import START, LearnedStats, token

__all__ = ["BonusConfig", "LearnedBonus", "Signal"]


@dataclass(frozen=True, slots=True)
class Signal:
    value: float  # in [-1, 1]
    confidence: float  # in [0, 1)


_NONE = Signal(0.0, 0.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class BonusConfig:
    transition_weight: float = 1.0
    ngram_weight: float = 1.0
    context_weight: float = 1.0
    prior: float = 2.0  # pseudo-count: confidence = n / (n + prior)

    def __post_init__(self) -> None:
        for name in ("transition_weight", "ngram_weight", "context_weight"):
            check_range(name, getattr(self, name), lo=0.0)
        check_range("prior", self.prior, lo=0.0, lo_open=True)


class LearnedBonus:
    """Answers transition, n-gram, contextual and combined queries."""

    def __init__(self, stats: LearnedStats, config: BonusConfig | None = None) -> None:
        self.stats = stats
        self.config = config or BonusConfig()
        self._memo: dict[tuple[tuple[str, ...], str, str], float] = {}
        self._memo_epoch = -1

    def _signal(self, table: dict[object, list[float]], key: object) -> Signal:
        c = table.get(key)
        if c is None:
            return _NONE
        scale = self.stats.scale
        s, f = c[0] / scale, c[1] / scale
        n = s + f
        if n <= 0.0:
            return _NONE
        return Signal((s - f) / n, n / (n + self.config.prior))

    def transition(self, prev: str, step: str) -> Signal:
        """How well did episodes go in which step ``prev`` was followed by ``step``?

        Steps are tokens ``action@context`` (:func:`swarmlearn.learn.stats.token`).
        """
        return self._signal(self.stats.transitions, (prev or START, step))

    def ngram(self, tail: Sequence[str], action: str) -> Signal:
        """The 4-gram signal if seen, else the 3-gram one (``tail``: recent steps, oldest first)."""
        t = [START, START, START, *tail[-3:]]
        four = self._signal(self.stats.ngrams4, (t[-3], t[-2], t[-1], action))
        if four.confidence > 0.0:
            return four
        return self._signal(self.stats.ngrams3, (t[-2], t[-1], action))

    def contextual(self, context: str, action: str) -> Signal:
        """How often ``action`` was useful on a target in ``context``."""
        return self._signal(self.stats.contexts, (context, action))

    def combined(self, tail: Sequence[str], context: str, action: str) -> float:
        """Confidence-weighted mix of the three signals, in [-1, 1] (``tail``: recent steps)."""
        cfg = self.config
        prev = tail[-1] if tail else START
        step = token(action, context)
        parts = (
            (self.transition(prev, step), cfg.transition_weight),
            (self.ngram(tail, step), cfg.ngram_weight),
            (self.contextual(context, action), cfg.context_weight),
        )
        num = den = 0.0
        for sig, weight in parts:
            w = weight * sig.confidence
            num += w * sig.value
            den += weight
        return num / den if den > 0.0 else 0.0

    def static(self, tail: tuple[str, ...], candidate: Candidate) -> float:
        """The part of :meth:`combined`'s numerator that only changes when an episode
        ends (everything but the contextual arm counts): Σ weight × confidence × value.

        Selection caches it per candidate (``learn/_armset.py``) and adds the
        contextual part, which changes with every action, itself. It is memoized
        per (tail, context, action) until the statistics' ``epoch`` changes (an
        episode end): within an episode every tick asks again for the same steps.
        The memo key must name everything this reads.
        """
        stats = self.stats
        memo = self._memo
        if stats.epoch != self._memo_epoch:
            memo.clear()
            self._memo_epoch = stats.epoch
        key = (tail, candidate.context, candidate.action.name)
        value = memo.get(key)
        if value is None:
            if len(memo) >= 65_536:
                memo.clear()
            cfg = self.config
            step = token(candidate.action.name, candidate.context)
            t, g = self.transition(tail[-1] if tail else START, step), self.ngram(tail, step)
            value = memo[key] = (cfg.transition_weight * t.confidence * t.value
                                 + cfg.ngram_weight * g.confidence * g.value)
        return value

    def confidence(self, tail: Sequence[str], context: str, action: str) -> float:
        """How much evidence backs ``combined`` (the mean confidence of its signals)."""
        prev = tail[-1] if tail else START
        step = token(action, context)
        sigs = (self.transition(prev, step), self.ngram(tail, step),
                self.contextual(context, action))
        return sum(s.confidence for s in sigs) / 3.0
