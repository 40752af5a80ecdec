"""Hypothesis strategies and helpers shared by the snapshot and merge tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope
from swarmlearn.learn.stats import LearnedStats

NAMES = ("CheckStatus", "ReadLogs", "Diagnose", "Restart", "^")
TARGETS = ("api", "db", "")
ARITY = {
    "actions": 1,
    "targets": 2,
    "contexts": 2,
    "transitions": 2,
    "ngrams3": 3,
    "ngrams4": 4,
    "strategies": 1,
}


def _table(arity: int) -> st.SearchStrategy[list[tuple[tuple[str, ...], int, int]]]:
    key = st.tuples(*[st.sampled_from(NAMES + TARGETS[:2])] * arity)
    row = st.tuples(key, st.integers(0, 30), st.integers(0, 30))
    return st.lists(row, max_size=3, unique_by=lambda r: r[0])


def _stats(tables: dict[str, list[Any]], episodes: tuple[int, int], decay: float) -> LearnedStats:
    data: dict[str, Any] = {
        "format_version": 1,
        "config": {"decay": decay, "max_entries": 1000},
        "episodes": [float(episodes[0]), float(episodes[1])],
        "events_seen": episodes[0] * 3,
    }
    for table, rows in tables.items():
        data[table] = [[*k, float(s), float(f)] for k, s, f in rows]
    return LearnedStats.from_dict(data)


# integer-valued weights: float sums of them are exact, so equalities can be exact
stats_st = st.builds(
    _stats,
    st.fixed_dictionaries({table: _table(arity) for table, arity in ARITY.items()}),
    st.tuples(st.integers(0, 30), st.integers(0, 30)),
    st.sampled_from([1.0, 0.99]),
)


@st.composite
def snapshot_st(
    draw: st.DrawFn,
    *,
    ids_from: int = 1,
    key: str = "troubleshooting",
    scope: SnapshotScope = SnapshotScope.SCENARIO,
) -> LearningSnapshot:
    """A valid snapshot; its session ids are drawn from [ids_from, ids_from + 100)."""
    episodes = draw(st.integers(0, 40))
    successes = draw(st.integers(0, episodes))
    actions = draw(st.integers(0, 400))
    ids = draw(st.lists(st.integers(ids_from, ids_from + 99), max_size=3, unique=True))
    offline = draw(
        st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {
                    "ucb1_c": st.floats(0.1, 3.0),
                    "order": st.lists(st.sampled_from(NAMES), max_size=3),
                }
            ),
        )
    )
    return LearningSnapshot(
        scope=scope,
        key=key,
        stats=draw(stats_st),
        created=float(draw(st.integers(1_700_000_000, 1_700_000_100))),
        sessions=len(ids) + draw(st.integers(0, 2)),
        session_ids=tuple(ids),
        episodes=episodes,
        successes=successes,
        actions=actions,
        solved_actions=draw(st.integers(0, actions)),
        offline=offline,
    )


def canon(snap: LearningSnapshot) -> dict[str, Any]:
    """to_dict with table rows sorted: equal snapshots give equal canon()."""
    d = snap.to_dict()
    stats = d["stats"]
    for table in ARITY:
        stats[table] = sorted(stats[table])
    return d
