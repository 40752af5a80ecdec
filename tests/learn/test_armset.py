"""The two ArmSet implementations (C arrays and Python lists) hold the same numbers,
bit for bit, through any sequence of actions, episode ends, decay, new candidate
lists and history tails (given as tokens or as the worker's events); the C Beta
sampler draws from the right distribution; the C core refuses bad input."""

from __future__ import annotations

import gc
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds
from swarmlearn.learn import _armset
from swarmlearn.learn._armset import GREEDY, THOMPSON, UCB1
from swarmlearn.learn.policies import LearningState, PolicyConfig
from swarmlearn.learn.stats import LearnedStats, StatsConfig
from swarmlearn.types import Failure, Success

fast = pytest.importorskip("swarmlearn.learn._fast", reason="the C accelerator was not built "
                           "(no C compiler at install time); the Python ArmSet is in use")

NAMES = ["A", "B", "C", "D"]
CONTEXTS = ["x", "y", ""]
FIELDS = ("N", "A", "B", "G", "TA", "TB", "W")


def _event(ids: EventIds, name: str, ctx: str, ok: bool, worker: int) -> ActionEvent:
    return ActionEvent(ids.next(), 1, "t", "", 0, 0, worker, name, "", (), ActionResult(ok), 0.0,
                       ctx, 0.0)


def _end(ids: EventIds, won: bool) -> EpisodeEnded:
    return EpisodeEnded(ids.next(), 1, "t", "", 0, 0, Success(0.7) if won else Failure("x"), 1, 1,
                        0.0, 0, 0, {}, 0.0)


def _same(a: _armset.ArmSetLike, b: _armset.ArmSetLike) -> None:
    for name in FIELDS:
        assert getattr(a, name) == getattr(b, name), name  # exact equality, no tolerance
    assert a.total == b.total and a.unvisited == b.unvisited


@settings(max_examples=80, deadline=None)
@given(
    plays=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(CONTEXTS), st.booleans(),
                             st.integers(0, 2), st.integers(0, 25)), min_size=1, max_size=120),
    decay=st.sampled_from([1.0, 0.93]),
    w=st.floats(0.0, 2.0),
    k=st.floats(0.0, 3.0),
)
def test_c_and_python_armsets_hold_the_same_numbers(
        plays: list[tuple[str, str, bool, int, int]], decay: float, w: float, k: float) -> None:
    stats = LearnedStats(StatsConfig(decay=decay))
    c_state = LearningState(stats, PolicyConfig(learning_weight=w), fast=True)
    py_state = LearningState(stats, PolicyConfig(learning_weight=w), fast=False)
    # duplicate candidates (same arm twice) and a context never played are included
    cands = [Candidate(Action(n, t), c) for n in NAMES for c in CONTEXTS for t in ("", "t")]
    cands.append(Candidate(Action("Z"), "never"))
    ids = EventIds(1)
    history: list[ActionEvent] = []
    rank = {"C": 0, "A": 1}
    for name, ctx, ok, worker, roll in plays:
        event = _event(ids, name, ctx, ok, worker)
        stats.observe([event])
        history.append(event)
        if roll == 0:  # an episode ends: the sequence tables change, decay
            stats.observe([_end(ids, ok)])
        if roll == 1:
            history = history[-1:]
        tail = _armset.tail_of(history)
        fresh = list(cands)  # a new list each decision, as the swarm makes
        # a state made now has no memo: what the running one remembers must not differ
        unmemoized = LearningState(stats, PolicyConfig(learning_weight=w), fast=True)
        _same(c_state.arms(fresh, history), unmemoized.arms(fresh, history))
        for c_arms in (c_state.arms(fresh, history), c_state.arms(fresh, tail)):
            py_arms = py_state.arms(cands, history)
            assert type(c_arms).__name__ == "ArmCore" and type(py_arms).__name__ == "PyArmSet"
            _same(c_arms, py_arms)
            for r in (rank, None):
                assert c_arms.ucb1(k, r) == py_arms.ucb1(k, r)
            if not c_arms.unvisited:
                for r in (rank, None):
                    assert c_arms.ucb(k, r) == py_arms.ucb(k, r)
                assert c_arms.ucb_scores(k) == py_arms.ucb_scores(k)
            for r in (rank, None):
                assert c_arms.greedy(r) == py_arms.greedy(r)
                assert c_arms.first_unvisited(r) == py_arms.first_unvisited(r)
        _same_picks(c_state, py_state, list(cands), history, k, rank, roll)


def _same_picks(c_state: LearningState, py_state: LearningState, cands: list[Candidate],
                history: list[ActionEvent], k: float, rank: dict[str, int], seed: int) -> None:
    """pick() (one call, no ArmSet) chooses what the ArmSet chooses, in C and in Python."""
    want = py_state.arms(cands, history)
    for r in (rank, None):
        assert c_state._pick(UCB1, k, cands, history, r) == want.ucb1(k, r)
        assert py_state._pick(UCB1, k, cands, history, r) == want.ucb1(k, r)
        assert c_state._pick(GREEDY, None, cands, history, r) == want.greedy(r)
        assert py_state._pick(GREEDY, None, cands, history, r) == want.greedy(r)
    # Thompson: the same draws as the C ArmSet's from a generator in the same state
    c_arms = c_state.arms(cands, history)
    assert c_state._pick(THOMPSON, fast.Rng(seed), cands, history, None) == c_arms.thompson(
        fast.Rng(seed))
    py_draw = py_state._pick(THOMPSON, _armset.sampler_for(False, seed), cands, history, None)
    assert py_draw == want.thompson(_armset.sampler_for(False, seed))


def test_pick_beyond_its_stack_buffer_chooses_as_the_armset() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    names = [f"a{i}" for i in range(70)]  # more candidates than pick() keeps on its stack
    for i in range(300):
        stats.observe([_event(ids, names[(i * 3) % 70], "x", i % 3 == 0, 0)])
        if i % 20 == 19:
            stats.observe([_end(ids, i % 40 == 19)])
    cands = [Candidate(Action(n), "x") for n in names]
    c_state = LearningState(stats, PolicyConfig(learning_weight=0.5), fast=True)
    py_state = LearningState(stats, PolicyConfig(learning_weight=0.5), fast=False)
    history = [_event(ids, "a3", "x", True, 0), _event(ids, "a5", "x", False, 0)]
    _same_picks(c_state, py_state, cands, history, 1.3, {"a9": 0}, 4)
    assert c_state.arms(cands, history).unvisited == 0  # the UCB scores decided, not a default


def test_new_table_entries_leave_the_cyclic_collector() -> None:
    stats = LearnedStats(fast=True)
    ids = EventIds(1)
    stats.observe([_event(ids, "A", "x", True, 0), _event(ids, "B", "y", False, 0)])
    stats.observe([_end(ids, True)])
    for table in (stats.actions, stats.contexts, stats.transitions, stats.ngrams3, stats.ngrams4):
        assert table
        for key, counts in table.items():
            assert not gc.is_tracked(counts), (key, counts)
            assert not gc.is_tracked(key)
    assert stats.contexts[("x", "A")] == [1.0, 0.0]


def test_the_memo_is_bounded_and_changes_no_number() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    for i in range(200):
        stats.observe([_event(ids, NAMES[i % 4], "x", i % 3 == 0, 0)])
    cands = [Candidate(Action(n), "x") for n in NAMES]
    state = LearningState(stats, fast=True)
    want = state.arms(cands, ("A@x", "B@x")).G
    state._memo.update({("junk", str(i)): "t" for i in range(200_000)})  # at the bound
    assert state.arms(cands, ("A@x", "B@x")).G == want  # hits: nothing is added
    other = [Candidate(Action(n), "new") for n in NAMES]  # misses: the memo starts over
    assert state.arms(other, ("A@x",)).N == [0.0] * 4
    assert state.arms(cands, ("A@x", "B@x")).G == want
    assert len(state._memo) < 100


def test_new_weights_are_not_answered_from_the_memo() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    for i in range(40):
        stats.observe([_event(ids, NAMES[i % 4], "x", i % 3 == 0, 0)])
        if i % 5 == 4:
            stats.observe([_end(ids, i % 2 == 0)])
    cands = [Candidate(Action(n), "x") for n in NAMES]
    state = LearningState(stats, PolicyConfig(learning_weight=1.0), fast=True)
    before = state.arms(cands, ("A@x", "B@x")).W
    state.configure(PolicyConfig(learning_weight=1.0, transition_weight=0.0, ngram_weight=3.0))
    after = state.arms(cands, ("A@x", "B@x")).W
    fresh = LearningState(stats, state.config, fast=True).arms(cands, ("A@x", "B@x")).W
    assert after == fresh and after != before


def test_sampler_is_seeded_and_uniform_is_in_range() -> None:
    a, b = fast.Rng(7), fast.Rng(7)
    assert [a.random() for _ in range(5)] == [b.random() for _ in range(5)]
    assert fast.Rng(7).random() != fast.Rng(8).random()
    draws = [a.random() for _ in range(20_000)]
    assert 0.0 <= min(draws) and max(draws) < 1.0
    assert abs(statistics.fmean(draws) - 0.5) < 0.01


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (2.0, 5.0), (30.5, 3.25), (0.5, 0.7)])
def test_beta_draws_follow_the_beta_distribution(alpha: float, beta: float) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = fast.Rng(123)
    draws = [rng.beta(alpha, beta) for _ in range(20_000)]
    assert all(0.0 <= x <= 1.0 for x in draws)
    mean = alpha / (alpha + beta)
    var = alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1))
    assert abs(statistics.fmean(draws) - mean) < 4 * math.sqrt(var / len(draws))
    assert scipy_stats.kstest(draws, "beta", args=(alpha, beta)).pvalue > 1e-3


def test_bad_sampler_arguments_are_refused() -> None:
    rng = fast.Rng(1)
    with pytest.raises(ValueError, match="a > 0"):
        rng.beta(0.0, 1.0)
    with pytest.raises(TypeError):
        rng.beta("x", 1.0)
    cands = [Candidate(Action("A"), "x")]
    arms = LearningState(fast=True).arms(cands, ())
    with pytest.raises(TypeError, match="Rng"):
        arms.thompson(object())


def test_the_c_core_refuses_bad_input() -> None:
    stats = LearnedStats()
    consts = (0.3, 1.0, 1.0, 1.0, 2.0, 1 / 3)
    good = [Candidate(Action("A"), "x")]
    assert fast.arms(stats, {}, *consts, [], ()).N == []  # empty, not a crash
    with pytest.raises(TypeError, match="Candidate"):
        fast.arms(stats, {}, *consts, [("A", "x")], ())
    with pytest.raises(TypeError, match="step tokens or ActionEvents"):
        fast.arms(stats, {}, *consts, good, (1, 2))
    with pytest.raises(TypeError, match="memo"):
        fast.arms(stats, None, *consts, good, ())
    with pytest.raises(TypeError, match="arms"):
        fast.arms(stats, {}, good, ())
    stats.contexts[("x", "A")] = "bad"  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"\[success, failure\]"):
        fast.arms(stats, {}, *consts, good, ())
    stats.contexts[("x", "A")] = [1.0, 0.0]
    arms = fast.arms(stats, {}, *consts, good, ())
    assert arms.N == [1.0] and arms.unvisited == 0
    with pytest.raises(TypeError, match="rank"):
        arms.greedy([1])
    with pytest.raises(TypeError, match="rank"):
        fast.pick(stats, {}, *consts, 0, 1.4, good, (), [1])
    with pytest.raises(ValueError, match="kind"):
        fast.pick(stats, {}, *consts, 3, None, good, (), None)
    with pytest.raises(TypeError, match="Rng"):
        fast.pick(stats, {}, *consts, 2, object(), good, (), None)
    with pytest.raises(TypeError, match="Candidate"):
        fast.pick(stats, {}, *consts, 1, None, [("A", "x")], (), None)
    assert fast.pick(stats, {}, *consts, 1, None, good, (), None) == 0
