"""Learning selection policies: UCB1, Thompson, Greedy, Adaptive.

The arms are (visible context, action name) pairs, so what is learned on one
task transfers to the next even though targets differ. Every score adds
``learning_weight × bonus``, the learned-bonus provider's combined signal
(transitions, n-grams, contexts). All policies of one swarm share one
:class:`LearningState`; its statistics are fed by the swarm's event bus.

* UCB1: ``rate + c·√(ln N / n) + w·bonus``; unvisited arms first.
* Thompson: ``Beta(s+1, f+1)`` sampled with a seeded generator (or its mean,
  ``thompson-mean``) ``+ w·bonus``.
* Greedy: ``(s+1)/(s+f+2) + w·bonus``, with an optional ε of random choices.
* Adaptive: UCB1 until the swarm has seen ``maturity`` actions, then Greedy
  while this worker's recent error rate is at most ``error_threshold``,
  else Thompson; every switch is published as a ``strategy_switch`` note.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn._config import check_range, from_mapping
from swarmlearn.core.actions import Candidate
from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import ActionEvent, Event, NoteEvent
from swarmlearn.core.workers import SelectionContext, SelectionPolicy
from swarmlearn.errors import ConfigError
from swarmlearn.learn._armset import (
    GREEDY,
    THOMPSON,
    UCB1,
    ArmSetLike,
    armset_maker,
    picker,
    sampler_for,
    uses_c,
)
from swarmlearn.learn.bonus import BonusConfig, LearnedBonus
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.types import Outcome, OutcomeKind

__all__ = [
    "STRATEGIES",
    "AdaptivePolicy",
    "GreedyPolicy",
    "LearningPolicies",
    "LearningState",
    "PolicyConfig",
    "Strategy",
    "ThompsonPolicy",
    "UCB1Policy",
    "ucb1_score",
]


class Strategy(enum.StrEnum):
    UCB1 = "ucb1"
    THOMPSON = "thompson"
    THOMPSON_MEAN = "thompson-mean"
    GREEDY = "greedy"
    ADAPTIVE = "adaptive"


STRATEGIES = tuple(s.value for s in Strategy)


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    ucb1_c: float = math.sqrt(2.0)
    learning_weight: float = 0.3
    ngram_weight: float = 1.0
    context_weight: float = 1.0
    transition_weight: float = 1.0
    epsilon: float = 0.0
    maturity: int = 200
    error_threshold: float = 0.5
    error_window: int = 50

    def __post_init__(self) -> None:
        check_range("ucb1_c", self.ucb1_c, lo=0.0)
        check_range("learning_weight", self.learning_weight, lo=0.0)
        check_range("ngram_weight", self.ngram_weight, lo=0.0)
        check_range("context_weight", self.context_weight, lo=0.0)
        check_range("transition_weight", self.transition_weight, lo=0.0)
        check_range("epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_range("maturity", self.maturity, lo=0)
        check_range("error_threshold", self.error_threshold, lo=0.0, hi=1.0)
        check_range("error_window", self.error_window, lo=1)

    def bonus_config(self) -> BonusConfig:
        return BonusConfig(transition_weight=self.transition_weight,
                           ngram_weight=self.ngram_weight, context_weight=self.context_weight)


def ucb1_score(successes: float, visits: float, total: float, c: float, bonus: float,
               weight: float) -> float:
    """UCB1 with a learned bonus; ``inf`` for an unvisited arm."""
    if visits <= 0.0:
        return math.inf
    return successes / visits + c * math.sqrt(math.log(max(total, 1.0)) / visits) + weight * bonus


class LearningState:
    """What one swarm's policies share: statistics, bonus, learned action order, notes."""

    def __init__(
        self,
        stats: LearnedStats | None = None,
        config: PolicyConfig | None = None,
        *,
        action_order: Sequence[str] = (),
        fast: bool | None = None,
    ) -> None:
        """``fast``: the C ArmSet (True), the Python one (False), or C when built (None)."""
        self.stats = stats if stats is not None else LearnedStats()
        self.rank = {name: i for i, name in enumerate(action_order)}
        self._bus: EventBus[Event] | None = None
        self.fast = uses_c(fast)
        self._memo: dict[Any, Any] = {}
        self.configure(config or PolicyConfig())

    def configure(self, config: PolicyConfig) -> None:
        self.config = config
        self.bonus = LearnedBonus(self.stats, config.bonus_config())
        b = self.bonus.config
        den = b.transition_weight + b.ngram_weight + b.context_weight
        self._consts = (config.learning_weight, b.transition_weight, b.ngram_weight,
                        b.context_weight, b.prior, 1.0 / den if den else 0.0)
        # step tokens of the arms, for the C ArmSets (a pure memo; new with new weights)
        self._memo = {}
        self._make = armset_maker(self.bonus, self._consts, self._memo, fast=self.fast)
        # a decision's numbers and choice in one call (no ArmSet object): what policies use
        self._pick = picker(self.bonus, self._consts, self._memo, fast=self.fast)

    def arms(self, cands: Sequence[Candidate], steps: Sequence[str | ActionEvent]) -> ArmSetLike:
        """The numbers of these candidates after these recent steps (tokens or a worker's
        ActionEvents, oldest first), from the statistics as they are now."""
        return self._make(cands, steps)

    def attach(self, bus: EventBus[Event]) -> None:
        """Feed the statistics from ``bus`` (inline: the next decision sees every event)."""
        bus.subscribe(self.stats.observe, name="learned-stats", inline=True)
        self._bus = bus

    def note(self, event: ActionEvent | None, worker: int, kind: str, message: str,
             data: Mapping[str, str | float]) -> None:
        if self._bus is None:
            return
        session, task, tick = (event.session, event.task, event.tick) if event else (0, "", 0)
        self._bus.publish([NoteEvent(session, task, worker, tick, kind, message, dict(data),
                                     time.time())])


class _ScoredPolicy:
    """Shared parts: the state, a seeded generator, strategy bookkeeping."""

    name = "scored"

    def __init__(self, state: LearningState, *, seed: int = 0, worker: int = 0) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self.worker = worker
        self._last: ActionEvent | None = None

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        raise NotImplementedError

    def update(self, event: ActionEvent) -> None:
        self._last = event

    def end_episode(self, outcome: Outcome) -> None:
        self.state.stats.record_strategy(self.name, outcome.kind is OutcomeKind.SUCCESS)


class UCB1Policy(_ScoredPolicy):
    name = Strategy.UCB1.value

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        st = self.state
        return st._pick(UCB1, st.config.ucb1_c, candidates, ctx.history, st.rank)


class ThompsonPolicy(_ScoredPolicy):
    name = Strategy.THOMPSON.value

    def __init__(self, state: LearningState, *, seed: int = 0, worker: int = 0,
                 sample: bool = True) -> None:
        super().__init__(state, seed=seed, worker=worker)
        self.sample = sample
        self._seed = seed
        self._sampler: Any = None
        if not sample:
            self.name = Strategy.THOMPSON_MEAN.value

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        st = self.state
        if not self.sample:  # the Beta mean (s+1)/(s+f+2) + w·bonus
            return st._pick(GREEDY, None, candidates, ctx.history, st.rank)
        if self._sampler is None:
            self._sampler = sampler_for(st.fast, self._seed)
        return st._pick(THOMPSON, self._sampler, candidates, ctx.history, None)


class GreedyPolicy(_ScoredPolicy):
    name = Strategy.GREEDY.value

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        eps = self.state.config.epsilon
        if eps > 0.0 and self.rng.random() < eps:
            return self.rng.randrange(len(candidates))
        st = self.state
        return st._pick(GREEDY, None, candidates, ctx.history, st.rank)


class AdaptivePolicy:
    """UCB1 while young, then Greedy (few errors) or Thompson (many); switches are noted."""

    name = Strategy.ADAPTIVE.value

    def __init__(self, state: LearningState, *, seed: int = 0, worker: int = 0) -> None:
        self.state = state
        self.worker = worker
        self._subs: dict[str, _ScoredPolicy] = {
            Strategy.UCB1: UCB1Policy(state, seed=seed, worker=worker),
            Strategy.GREEDY: GreedyPolicy(state, seed=seed, worker=worker),
            Strategy.THOMPSON: ThompsonPolicy(state, seed=seed, worker=worker),
        }
        self.current = Strategy.UCB1.value
        self.switches = 0
        self._errors: deque[bool] = deque(maxlen=state.config.error_window)
        self._failed = 0  # how many of self._errors are True
        self._last: ActionEvent | None = None

    def error_rate(self) -> float:
        """This worker's error rate over its last ``error_window`` actions."""
        return self._failed / len(self._errors) if self._errors else 0.0

    def choose(self) -> str:
        cfg = self.state.config
        if self.state.stats.events_seen < cfg.maturity:
            return Strategy.UCB1.value
        rate = self.error_rate()
        return Strategy.GREEDY.value if rate <= cfg.error_threshold else Strategy.THOMPSON.value

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        want = self.choose()
        if want != self.current:
            rate = self.error_rate()
            self.state.note(self._last, self.worker, "strategy_switch",
                            f"worker {self.worker}: {self.current} → {want}",
                            {"from": self.current, "to": want, "error_rate": rate,
                             "events_seen": float(self.state.stats.events_seen)})
            self.current = want
            self.switches += 1
        return self._subs[self.current].select(candidates, ctx)

    def update(self, event: ActionEvent) -> None:
        errors, failed = self._errors, not event.result.success
        if len(errors) == errors.maxlen:
            self._failed -= errors[0]  # the oldest leaves the window
        errors.append(failed)
        self._failed += failed
        self._last = event

    def end_episode(self, outcome: Outcome) -> None:
        self.state.stats.record_strategy(f"{self.name}:{self.current}",
                                         outcome.kind is OutcomeKind.SUCCESS)


def _make(strategy: Strategy, state: LearningState, seed: int, worker: int) -> SelectionPolicy:
    if strategy is Strategy.UCB1:
        return UCB1Policy(state, seed=seed, worker=worker)
    if strategy is Strategy.THOMPSON:
        return ThompsonPolicy(state, seed=seed, worker=worker)
    if strategy is Strategy.THOMPSON_MEAN:
        return ThompsonPolicy(state, seed=seed, worker=worker, sample=False)
    if strategy is Strategy.GREEDY:
        return GreedyPolicy(state, seed=seed, worker=worker)
    return AdaptivePolicy(state, seed=seed, worker=worker)


class LearningPolicies:
    """A PolicyFactory for one strategy whose policies share one LearningState.

    ``run_session`` calls :meth:`attach` with the swarm's bus before the first
    episode, which is what feeds the shared statistics.
    """

    def __init__(self, strategy: str | Strategy, state: LearningState | None = None) -> None:
        try:
            self.strategy = Strategy(strategy)
        except ValueError:
            raise ConfigError(f"workers.policy: unknown strategy {strategy!r} "
                              f"(known: {', '.join(STRATEGIES)})", field="workers.policy",
                              value=strategy) from None
        self.state = state or LearningState()
        self._params_seen: Mapping[str, Any] | None = None

    def __call__(self, worker: int, *, seed: int,
                 params: Mapping[str, str | int | float | bool]) -> SelectionPolicy:
        if params and params != self._params_seen:
            merged = {**_config_dict(self.state.config), **params}
            self.state.configure(from_mapping(PolicyConfig, merged, where="workers.policy_params"))
            self._params_seen = params
        return _make(self.strategy, self.state, seed * 7919 + worker, worker)

    def attach(self, bus: EventBus[Event]) -> None:
        self.state.attach(bus)


def _config_dict(cfg: PolicyConfig) -> dict[str, Any]:
    return {f: getattr(cfg, f) for f in PolicyConfig.__slots__}


def policies_for(name: str) -> LearningPolicies:
    """The lazy hook ``swarmlearn.session`` resolves strategy names through."""
    return LearningPolicies(name)
