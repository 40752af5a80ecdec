"""Learned statistics and the bonus provider: counts, attribution, decay, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds
from swarmlearn.errors import ArtifactError
from swarmlearn.learn.bonus import LearnedBonus
from swarmlearn.learn.stats import START, LearnedStats, StatsConfig, value_of
from swarmlearn.types import Failure, Success


def _ev(ids: EventIds, name: str, ok: bool, *, worker: int = 0, ctx: str = "c",
        target: str = "t") -> ActionEvent:
    return ActionEvent(ids.next(), ids.session, "task", "", 0, 0, worker, name, target, (),
                       ActionResult(ok), 0.0, ctx, 0.0)


def _end(ids: EventIds, won: bool) -> EpisodeEnded:
    return EpisodeEnded(ids.next(), ids.session, "task", "", 0, 0,
                        Success(1.0) if won else Failure("no"), 1, 1, 0.0, 0, 0, {}, 0.0)


def test_tables_and_attribution() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    stats.observe([_ev(ids, "A", True), _ev(ids, "B", False), _ev(ids, "C", True),
                   _ev(ids, "D", True, worker=1), _end(ids, True)])
    stats.observe([_ev(ids, "A", True), _ev(ids, "C", False), _end(ids, False)])
    assert stats.get(stats.actions, "A") == (2.0, 0.0)
    assert stats.get(stats.targets, ("B", "t")) == (0.0, 1.0)
    assert stats.arm("c", "C") == (1.0, 1.0)
    # transitions are credited with the *episode* outcome, per worker sequence of steps
    assert stats.get(stats.transitions, ("A@c", "B@c")) == (1.0, 0.0)
    assert stats.get(stats.transitions, ("A@c", "C@c")) == (0.0, 1.0)
    assert stats.get(stats.transitions, (START, "D@c")) == (1.0, 0.0)
    assert stats.get(stats.ngrams3, ("A@c", "B@c", "C@c")) == (1.0, 0.0)
    assert stats.get(stats.ngrams4, (START, "A@c", "B@c", "C@c")) == (1.0, 0.0)
    assert stats.episodes_won_lost() == (1.0, 1.0)


def test_graded_outcomes_weigh_efficient_episodes_higher() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    stats.observe([_ev(ids, "A", True, ctx=""), _ev(ids, "B", True, ctx="")])
    stats.observe([EpisodeEnded(ids.next(), 1, "t", "", 0, 0, Success(0.25), 1, 1, 0.0, 0, 0, {},
                                0.0)])
    assert stats.get(stats.transitions, ("A", "B")) == (0.25, 0.75)


def test_bonus_queries() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    for _ in range(5):
        stats.observe([_ev(ids, "A", True), _ev(ids, "B", True), _end(ids, True)])
        stats.observe([_ev(ids, "A", True), _ev(ids, "X", False), _end(ids, False)])
    bonus = LearnedBonus(stats)
    assert bonus.transition("A@c", "B@c").value == 1.0
    assert bonus.transition("A@c", "X@c").value == -1.0
    assert bonus.transition("A@c", "B@c").confidence == pytest.approx(5 / 7)
    assert bonus.ngram(["A@c"], "B@c").value == 1.0
    assert bonus.contextual("c", "X").value == -1.0
    assert bonus.combined(["A@c"], "c", "B") > 0 > bonus.combined(["A@c"], "c", "X")
    assert bonus.combined([], "never", "seen") == 0.0
    assert value_of(3, 1) == pytest.approx(2 / 5)


def test_static_bonus_is_remembered_until_an_episode_ends() -> None:
    stats = LearnedStats()
    ids = EventIds(1)
    bonus = LearnedBonus(stats)
    cand = Candidate(Action("B", "t"), "c")
    assert bonus.static(("A@c",), cand) == 0.0  # nothing learned yet
    stats.observe([_ev(ids, "A", True), _ev(ids, "B", True)])
    assert bonus.static(("A@c",), cand) == 0.0  # actions alone do not change it
    stats.observe([_end(ids, True)])  # the episode credits A@c → B@c
    cfg = bonus.config
    t, g = bonus.transition("A@c", "B@c"), bonus.ngram(("A@c",), "B@c")
    want = (cfg.transition_weight * t.confidence * t.value
            + cfg.ngram_weight * g.confidence * g.value)
    assert want > 0.0 and bonus.static(("A@c",), cand) == want


def test_decay_forgets_old_counts() -> None:
    stats = LearnedStats(StatsConfig(decay=0.5))
    ids = EventIds(1)
    stats.observe([_ev(ids, "A", True), _end(ids, True)])
    stats.observe([_ev(ids, "A", False), _end(ids, True)])
    s, f = stats.get(stats.actions, "A")
    assert f == pytest.approx(2 * s)  # the newer failure weighs twice the older success
    for _ in range(2000):  # the global scale renormalises long before overflow
        stats.observe([_end(ids, True)])
    s2, _ = stats.get(stats.actions, "A")
    assert 0 <= s2 < 1e-300 or s2 == 0.0
    assert stats.scale < 1e151


def test_memory_stays_bounded_on_long_runs() -> None:
    stats = LearnedStats(StatsConfig(max_entries=200))
    ids = EventIds(1)
    for ep in range(2_000):
        names = [f"a{(ep * 7 + k) % 997}" for k in range(6)]
        stats.observe([_ev(ids, n, k % 2 == 0, ctx=f"c{ep % 50}") for k, n in enumerate(names)])
        stats.observe([_end(ids, ep % 3 == 0)])
    sizes = stats.size()
    assert max(sizes.values()) <= 200, sizes
    assert stats.evicted > 0
    assert len(stats._sequences) == 0  # finished episodes leave nothing behind


def test_round_trip_and_bad_input() -> None:
    stats = LearnedStats(StatsConfig(decay=0.9))
    ids = EventIds(1)
    stats.observe([_ev(ids, "A", True), _ev(ids, "B", False), _end(ids, True)])
    data = stats.to_dict()
    assert LearnedStats.from_dict(data).to_dict() == data
    with pytest.raises(ArtifactError, match="format_version"):
        LearnedStats.from_dict({**data, "format_version": 99})
    bad = {**data, "actions": [["A", -1.0, 0.0]]}
    with pytest.raises(ArtifactError, match="negative"):
        LearnedStats.from_dict(bad)
    with pytest.raises(ArtifactError, match="should have 2 parts"):
        LearnedStats.from_dict({**data, "contexts": [["A", 1.0, 0.0]]})
    with pytest.raises(ArtifactError, match="expected an object"):
        LearnedStats.from_dict([1, 2])


_fast = pytest.importorskip("swarmlearn.learn._fast", reason="the C accelerator was not built")


def _tables(stats: LearnedStats) -> list[object]:
    """Everything the updates touch, with the tables' orders (eviction and to_dict follow them)."""
    return [stats.to_dict(), stats.events_seen, stats.epoch, stats.scale,
            *[list(getattr(stats, name)) for name in stats.size()],
            {k: list(v) for k, v in stats._sequences.items()}]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]),
                                        st.sampled_from(["", "t", "u"]),
                                        st.sampled_from(["", "x", "y"]), st.booleans(),
                                        st.integers(0, 2), st.integers(1, 2), st.integers(0, 6)),
                              max_size=8), min_size=1, max_size=30),
    decay=st.sampled_from([1.0, 0.9]),
    cap=st.sampled_from([16, 50_000]),
)
def test_c_and_python_updates_leave_the_same_tables(
        batches: list[list[tuple[str, str, str, bool, int, int, int]]], decay: float,
        cap: int) -> None:
    cfg = StatsConfig(decay=decay, max_entries=cap)
    c_stats, py_stats = LearnedStats(cfg, fast=True), LearnedStats(cfg, fast=False)
    assert c_stats.fast and not py_stats.fast
    ids = EventIds(1)
    for plays in batches:  # a batch as the bus hands it: actions, with episode ends among them
        batch: list[ActionEvent | EpisodeEnded] = []
        for name, target, ctx, ok, worker, session, roll in plays:
            batch.append(ActionEvent(ids.next(), session, "task", "", 0, 0, worker, name, target,
                                     (), ActionResult(ok), 0.0, ctx, 0.0))
            if roll == 0:
                batch.append(EpisodeEnded(ids.next(), session, "task", "", 0, 0,
                                          Success(0.75) if ok else Failure("no"), 1, 1, 0.0, 0,
                                          0, {}, 0.0))
        c_stats.observe(batch)
        py_stats.observe(batch)
        assert _tables(c_stats) == _tables(py_stats)  # exact: no tolerance


def test_the_c_updates_refuse_bad_input_and_count_what_they_applied() -> None:
    stats = LearnedStats(fast=True)
    ids = EventIds(1)
    good = _ev(ids, "A", True)
    with pytest.raises(TypeError, match="ActionEvent"):
        _fast.observe(stats, stats._tokens, [good._replace(action=1)], ActionEvent, EpisodeEnded)
    stats = LearnedStats(fast=True)
    stats.actions["B"] = "bad"  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"\[success, failure\]"):
        stats.observe([good, _ev(ids, "B", True)])
    # like the Python updates, an event counts as seen before its bumps
    assert stats.events_seen == 2 and stats.get(stats.actions, "A") == (1.0, 0.0)
    with pytest.raises(TypeError, match="tokens must be a dict"):
        _fast.observe(stats, None, [good], ActionEvent, EpisodeEnded)
    with pytest.raises(TypeError, match="two floats"):
        _fast.credit({}, {}, {}, [["A"]], 1, 0.0)


@pytest.mark.parametrize("fast", [True, False])
def test_an_episode_end_credits_its_own_session_only(fast: bool) -> None:
    stats = LearnedStats(fast=fast)
    one, two = EventIds(1), EventIds(2)
    stats.observe([_ev(one, "A", True), _ev(two, "X", True), _ev(one, "B", True),
                   _ev(two, "Y", True, worker=1)])
    stats.observe([_end(one, True)])
    assert stats.get(stats.transitions, ("A@c", "B@c")) == (1.0, 0.0)
    assert stats.get(stats.transitions, (START, "X@c")) == (0.0, 0.0)  # session 2 goes on
    assert list(stats._sequences) == [(2, 0), (2, 1)]
    stats.observe([_ev(two, "Z", True), _end(two, False)])
    assert stats.get(stats.transitions, ("X@c", "Z@c")) == (0.0, 1.0)
    assert stats.get(stats.transitions, (START, "Y@c")) == (0.0, 1.0)
    assert not stats._sequences
