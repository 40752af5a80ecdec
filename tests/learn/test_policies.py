"""Selection policies: the fast path equals the formulas; each strategy behaves as documented."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds
from swarmlearn.core.manager import Guidance
from swarmlearn.core.workers import SelectionContext
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.policies import (
    AdaptivePolicy,
    GreedyPolicy,
    LearningPolicies,
    LearningState,
    PolicyConfig,
    ThompsonPolicy,
    UCB1Policy,
    ucb1_score,
)
from swarmlearn.learn.stats import LearnedStats, StatsConfig
from swarmlearn.types import Failure, Success

NAMES = ["A", "B", "C", "D", "E"]
CONTEXTS = ["x", "y"]


def _event(ids: EventIds, name: str, context: str, ok: bool, worker: int = 0) -> ActionEvent:
    return ActionEvent(ids.next(), 1, "t", "", 0, 0, worker, name, "", (), ActionResult(ok), 0.0,
                       context, 0.0)


def _ctx(history: list[ActionEvent] | None = None) -> SelectionContext:
    obs = Observation(step=0, candidates=(), targets={}, facts={}, done=False)
    return SelectionContext(0, obs, Guidance(), history or [])


def _end(ids: EventIds, won: bool) -> EpisodeEnded:
    return EpisodeEnded(ids.next(), 1, "t", "", 0, 0, Success(1.0) if won else Failure("x"), 1, 1,
                        0.0, 0, 0, {}, 0.0)


def _reference_ucb(state: LearningState, cands: list[Candidate], tail: list[str]) -> list[float]:
    bonus = LearnedBonus(state.stats, state.config.bonus_config())
    arms = [state.stats.arm(c.context, c.action.name) for c in cands]
    total = sum(s + f for s, f in arms)
    return [ucb1_score(s, s + f, total, state.config.ucb1_c,
                       bonus.combined(tail, c.context, c.action.name),
                       state.config.learning_weight) for (s, f), c in zip(arms, cands, strict=True)]


IMPLS = pytest.mark.parametrize("fast", [True, False], ids=["C", "python"])


@IMPLS
@settings(max_examples=60, deadline=None)
@given(
    plays=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(CONTEXTS), st.booleans(),
                             st.integers(0, 2)), min_size=5, max_size=80),
    ends=st.lists(st.booleans(), max_size=4),
    decay=st.sampled_from([1.0, 0.9]),
    c=st.floats(0.0, 2.0),
    w=st.floats(0.0, 1.5),
)
def test_fast_ucb1_equals_the_formula(fast: bool, plays: list[tuple[str, str, bool, int]],
                                      ends: list[bool], decay: float, c: float, w: float) -> None:
    stats = LearnedStats(StatsConfig(decay=decay))
    state = LearningState(stats, PolicyConfig(ucb1_c=c, learning_weight=w), fast=fast)
    ids = EventIds(1)
    policy = UCB1Policy(state)
    cands = [Candidate(Action(n), ctx) for n in NAMES for ctx in CONTEXTS]
    history: list[ActionEvent] = []
    for k, (name, ctx, ok, worker) in enumerate(plays):
        ev = _event(ids, name, ctx, ok, worker)
        history.append(ev)
        stats.observe([ev])
        if ends and k % 20 == 19:
            stats.observe([_end(ids, ends[(k // 20) % len(ends)])])
        # compare after every play, so incremental updates are exercised too
        got = policy.select(cands, _ctx(history[-8:]))
        ref = _reference_ucb(state, cands, [f"{e.action}@{e.context}" for e in history[-3:]])
        best = max(ref)
        assert math.isclose(ref[got], best, rel_tol=1e-9, abs_tol=1e-9) or ref[got] == best


@IMPLS
def test_ucb1_plays_unvisited_arms_first_in_learned_order(fast: bool) -> None:
    state = LearningState(action_order=["C", "A", "B"], fast=fast)
    policy = UCB1Policy(state)
    cands = [Candidate(Action(n), "x") for n in ["A", "B", "C"]]
    ids = EventIds(1)
    order = []
    for _ in range(3):
        i = policy.select(cands, _ctx())
        order.append(cands[i].action.name)
        state.stats.observe([_event(ids, cands[i].action.name, "x", True)])
    assert order == ["C", "A", "B"]


def _bandit(policy_name: str, probs: list[float], steps: int, seed: int = 0,
            fast: bool | None = None) -> list[int]:
    state = LearningState(fast=fast)
    policy = LearningPolicies(policy_name, state)(0, seed=seed, params={})
    cands = [Candidate(Action(f"a{i}"), "ctx") for i in range(len(probs))]
    rng = random.Random(seed)
    ids = EventIds(1)
    picks = []
    for _ in range(steps):
        i = policy.select(cands, _ctx())
        picks.append(i)
        state.stats.observe([_event(ids, cands[i].action.name, "ctx", rng.random() < probs[i])])
    return picks


@IMPLS
@pytest.mark.parametrize("name", ["ucb1", "thompson", "thompson-mean", "greedy", "adaptive"])
def test_every_strategy_finds_the_best_arm(name: str, fast: bool) -> None:
    picks = _bandit(name, [0.2, 0.8, 0.4], 600, fast=fast)
    assert picks[-200:].count(1) / 200 > 0.7


@IMPLS
def test_thompson_is_seeded(fast: bool) -> None:
    def run(seed: int) -> list[int]:
        return _bandit("thompson", [0.5, 0.5, 0.5], 50, seed=seed, fast=fast)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_thompson_mean_is_the_beta_mean_plus_bonus() -> None:
    state = LearningState()
    ids = EventIds(1)
    for ok in (True, True, False):
        state.stats.observe([_event(ids, "A", "x", ok)])
    state.stats.observe([_event(ids, "B", "x", True)])
    cands = [Candidate(Action("A"), "x"), Candidate(Action("B"), "x")]
    policy = ThompsonPolicy(state, sample=False)
    # A: (2+1)/(3+2) = 0.6, B: (1+1)/(1+2) = 0.667 -> B (bonus is small and favours both)
    assert policy.select(cands, _ctx()) == 1 and policy.name == "thompson-mean"


def test_greedy_epsilon_explores() -> None:
    state = LearningState(config=PolicyConfig(epsilon=1.0))
    cands = [Candidate(Action(f"a{i}"), "x") for i in range(5)]
    picks = {GreedyPolicy(state, seed=s).select(cands, _ctx()) for s in range(30)}
    assert len(picks) > 2


def test_adaptive_switches_and_notes_it() -> None:
    from swarmlearn.core.bus import EventBus

    state = LearningState(config=PolicyConfig(maturity=10, error_threshold=0.5))
    bus: EventBus[object] = EventBus()
    notes: list[object] = []
    bus.subscribe(notes.extend, inline=True)
    state.attach(bus)  # type: ignore[arg-type]
    policy = AdaptivePolicy(state)
    cands = [Candidate(Action("a"), "x"), Candidate(Action("b"), "x")]
    ids = EventIds(1)
    assert policy.choose() == "ucb1"
    for k in range(20):
        policy.select(cands, _ctx())
        ev = _event(ids, "a", "x", k % 4 != 0)
        bus.publish([ev])
        policy.update(ev)
    policy.select(cands, _ctx())
    assert policy.current == "greedy" and policy.switches == 1
    (note,) = [n for n in notes if getattr(n, "kind", "") == "strategy_switch"]
    assert note.data["from"] == "ucb1" and note.data["to"] == "greedy"  # type: ignore[attr-defined]
    for _ in range(50):
        ev = _event(ids, "a", "x", False)
        bus.publish([ev])
        policy.update(ev)
    policy.select(cands, _ctx())
    assert policy.current == "thompson"


@settings(max_examples=40, deadline=None)
@given(oks=st.lists(st.booleans(), max_size=60), window=st.integers(1, 7))
def test_adaptive_error_rate_is_the_window_mean(oks: list[bool], window: int) -> None:
    policy = AdaptivePolicy(LearningState(config=PolicyConfig(error_window=window)))
    ids = EventIds(1)
    for k, ok in enumerate(oks):
        policy.update(_event(ids, "a", "x", ok))
        last = [not o for o in oks[max(0, k + 1 - window): k + 1]]
        assert policy.error_rate() == sum(last) / len(last)  # exact, as the sum over the window
    assert policy.error_rate() == 0.0 or oks


def test_policy_params_from_scenario_are_validated() -> None:
    from swarmlearn.errors import ConfigError

    factory = LearningPolicies("ucb1")
    factory(0, seed=0, params={"ucb1_c": 0.5})
    assert factory.state.config.ucb1_c == 0.5
    with pytest.raises(ConfigError, match=r"workers\.policy_params\.ucb1_c"):
        LearningPolicies("ucb1")(0, seed=0, params={"ucb1_c": -1.0})
    with pytest.raises(ConfigError, match="unknown strategy"):
        LearningPolicies("magic")
