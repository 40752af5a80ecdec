"""Merge strategies: properties with hypothesis, known weights, merging in the store."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import pytest
from _snapshot_strategies import canon, snapshot_st, stats_st
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn.merge import (
    Additive,
    MergeKind,
    MergeStrategy,
    SuccessWeighted,
    TimeDecay,
    combine_stats,
    merge,
    merge_stored,
    session_ages,
    strategy_from_name,
)
from swarmlearn.learn.snapshot import SNAPSHOT_KIND, LearningSnapshot, SnapshotScope, SnapshotStore
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import SqlStore

strategies = st.one_of(
    st.just(Additive()),
    st.floats(0.1, 50.0).map(lambda h: TimeDecay(half_life_sessions=h)),
    st.floats(0.01, 1.0).map(lambda f: SuccessWeighted(floor=f)),
)
# three snapshots of one scenario covering disjoint sessions
three = st.tuples(snapshot_st(ids_from=1), snapshot_st(ids_from=101), snapshot_st(ids_from=201))


def _rows(snap: LearningSnapshot) -> list[list[Any]]:
    d = snap.stats.to_dict()
    return [row for t in snap.stats.size() for row in d[t]] + [d["episodes"]]


@settings(max_examples=40, deadline=None)
@given(three, strategies)
def test_counts_never_negative(
    snaps: tuple[LearningSnapshot, ...], strategy: MergeStrategy
) -> None:
    merged = merge(snaps, strategy)
    assert all(x >= 0 for row in _rows(merged) for x in row[-2:])
    assert min(merged.episodes, merged.successes, merged.actions, merged.sessions) >= 0
    assert merged.sessions == sum(s.sessions for s in snaps)
    weights = strategy.weights(snaps)
    assert all(0 < w <= 1 for w in weights) and max(weights) == 1.0


@settings(max_examples=40, deadline=None)
@given(three)
def test_additive_is_commutative_and_associative(snaps: tuple[LearningSnapshot, ...]) -> None:
    a, b, c = snaps
    assert canon(merge([a, b])) == canon(merge([b, a]))
    left = merge([merge([a, b]), c])
    right = merge([a, merge([b, c])])
    assert canon(left) == canon(right) == canon(merge([a, b, c])) == canon(merge([c, a, b]))


@settings(max_examples=40, deadline=None)
@given(snapshot_st(), strategies)
def test_merging_one_snapshot_returns_an_equal_one(
    snap: LearningSnapshot, strategy: MergeStrategy
) -> None:
    assert merge([snap], strategy).to_dict() == snap.to_dict()


@settings(max_examples=40, deadline=None)
@given(three)
def test_time_decay_with_infinite_half_life_is_additive(
    snaps: tuple[LearningSnapshot, ...],
) -> None:
    assert canon(merge(snaps, TimeDecay(half_life_sessions=math.inf))) == canon(merge(snaps))


@settings(max_examples=40, deadline=None)
@given(st.lists(stats_st, min_size=1, max_size=4))
def test_combine_with_unit_weights_sums_counts(parts: list[LearnedStats]) -> None:
    total = combine_stats([(s, 1.0) for s in parts])
    for name in ("actions", "contexts", "ngrams4"):
        table = getattr(total, name)
        for key in table:
            want = [sum(s.get(getattr(s, name), key)[i] for s in parts) for i in (0, 1)]
            assert list(total.get(table, key)) == pytest.approx(want)
    assert total.events_seen == sum(s.events_seen for s in parts)


# -- the strategies, by hand -------------------------------------------------------------------
def _snap(
    created: float,
    *,
    sessions: int = 1,
    episodes: int = 10,
    successes: int = 5,
    ids: tuple[int, ...] = (),
    key: str = "troubleshooting",
    **kw: Any,
) -> LearningSnapshot:
    stats = LearnedStats()
    stats.actions["Restart"] = [4.0, 2.0]
    return LearningSnapshot(
        scope=SnapshotScope.SCENARIO,
        key=key,
        stats=stats,
        created=created,
        sessions=sessions,
        session_ids=ids,
        episodes=episodes,
        successes=successes,
        **kw,
    )


def test_time_decay_weighs_by_age_in_sessions() -> None:
    snaps = [_snap(3.0), _snap(1.0, sessions=2), _snap(2.0)]  # newest first: 0, 2, 1
    assert session_ages(snaps) == [0.0, 2.0, 1.0]
    assert TimeDecay(half_life_sessions=1).weights(snaps) == [1.0, 0.25, 0.5]
    assert TimeDecay(half_life_sessions=1).weights(snaps[::-1]) == [0.5, 0.25, 1.0]
    merged = merge(snaps, TimeDecay(half_life_sessions=1))
    assert merged.stats.get(merged.stats.actions, "Restart") == (4 * 1.75, 2 * 1.75)
    assert merged.created == 3.0 and merged.sessions == 4


def test_success_weighted_keeps_a_floor() -> None:
    snaps = [_snap(1.0, successes=8), _snap(2.0, successes=0), _snap(3.0, successes=4)]
    assert SuccessWeighted(floor=0.2).weights(snaps) == [1.0, 0.25, 0.5]
    merged = merge(snaps, SuccessWeighted(floor=0.2))
    assert merged.stats.get(merged.stats.actions, "Restart") == (7.0, 3.5)
    assert (merged.episodes, merged.successes) == (30, 12)


def test_strategy_configs_are_checked() -> None:
    assert isinstance(strategy_from_name("additive"), Additive)
    assert strategy_from_name("time-decay", half_life=3) == TimeDecay(half_life_sessions=3)
    assert strategy_from_name(MergeKind.SUCCESS_WEIGHTED, floor=0.5) == SuccessWeighted(floor=0.5)
    for bad in (
        lambda: TimeDecay(half_life_sessions=0),
        lambda: TimeDecay(half_life_sessions=-1),
        lambda: TimeDecay(half_life_sessions=math.nan),
        lambda: SuccessWeighted(floor=0),
        lambda: strategy_from_name("time-decay"),
        lambda: strategy_from_name("mean"),
    ):
        with pytest.raises(ConfigError):
            bad()


def test_merge_refuses_what_would_be_wrong() -> None:
    with pytest.raises(ConfigError, match="nothing to merge"):
        merge([])
    with pytest.raises(ConfigError, match="snapshot #0 and snapshot #1 both summarise session 4"):
        merge([_snap(1.0, ids=(3, 4), sessions=2), _snap(2.0, ids=(4,))])
    a, b = _snap(1.0), _snap(2.0, key="maze")
    with pytest.raises(ConfigError, match="different keys"):
        merge([a, b])
    both = merge([a, b], scope="global", key="all")
    assert (both.name, both.scenario) == ("global:all", "")


def test_offline_model_is_the_newest_non_empty_one() -> None:
    old = _snap(1.0, offline={"ucb1_c": 1.0})
    new = _snap(5.0, offline={"ucb1_c": 2.0})
    none = _snap(9.0)
    assert merge([old, new, none]).offline == {"ucb1_c": 2.0}
    assert merge([none]).offline == {}


# -- in the store ------------------------------------------------------------------------------
def _state(store: SqlStore) -> list[tuple[str, int, str]]:
    return sorted((r.name, r.version, r.sha256) for r in store.artifacts(SNAPSHOT_KIND))


def test_merge_stored_adds_one_version(store: SqlStore) -> None:
    snaps = SnapshotStore(store)
    for i in range(3):
        snaps.save(_snap(float(i), ids=(i + 1,), successes=i))
    out = merge_stored(
        snaps, "scenario", "troubleshooting", TimeDecay(half_life_sessions=2), latest=2
    )
    assert out.version == 4 and out.meta["strategy"] == "time-decay"
    assert out.meta["merged_from"] == ["scenario:troubleshooting v3", "scenario:troubleshooting v2"]
    loaded = snaps.load("scenario", "troubleshooting").snapshot
    assert loaded.session_ids == (2, 3) and loaded.episodes == 20
    assert loaded.to_dict() == out.snapshot.to_dict()


def test_merge_scenario_from_its_session_snapshots(store: SqlStore) -> None:
    snaps = SnapshotStore(store)
    for sid in (5, 6, 7):
        snaps.save(
            LearningSnapshot(
                scope="session",
                key=str(sid),
                scenario="troubleshooting",
                stats=LearnedStats(),
                sessions=1,
                session_ids=(sid,),
                episodes=2,
                successes=1,
            )
        )
    snaps.save(LearningSnapshot(scope="session", key="8", scenario="maze", stats=LearnedStats()))
    out = merge_stored(snaps, "scenario", "troubleshooting", from_sessions=True)
    assert out.snapshot.name == "scenario:troubleshooting" and out.snapshot.session_ids == (5, 6, 7)
    assert out.snapshot.scenario == "troubleshooting" and out.snapshot.episodes == 6
    with pytest.raises(ConfigError, match="only a scenario snapshot"):
        merge_stored(snaps, "global", "all", from_sessions=True)
    with pytest.raises(ConfigError, match="no stored snapshots to merge"):
        merge_stored(snaps, "scenario", "nothing")


CORRUPT: list[bytes | None] = [
    b"garbage",
    zlib.compress(b"[1, 2]"),
    zlib.compress(json.dumps({"format_version": 9}).encode()),
    zlib.compress(json.dumps({"format_version": 1, "scope": "scenario"}).encode()),
    None,  # a snapshot that covers a session another one covers
]


def test_failed_merge_leaves_the_store_untouched(store: SqlStore) -> None:
    snaps = SnapshotStore(store)
    for n, corrupt in enumerate(CORRUPT):
        key = f"s{n}"
        for i in range(3):
            snaps.save(_snap(float(i), ids=(i + 1,), key=key))
        if corrupt is None:
            snaps.save(_snap(9.0, ids=(2,), key=key))
        else:
            store.put_artifact(SNAPSHOT_KIND, f"scenario:{key}", corrupt)
        snaps.save(_snap(10.0, ids=(50,), key=key))
        before = _state(store)
        for strategy in (Additive(), SuccessWeighted()):
            with pytest.raises((ArtifactError, ConfigError)) as info:
                merge_stored(snaps, "scenario", key, strategy, latest=4)
            assert f"scenario:{key} v4" in str(info.value)
        assert _state(store) == before
        assert [s.version for s in snaps.latest_n("scenario", key, 1)] == [5]
