"""Merging learning snapshots: Additive, TimeDecay and SuccessWeighted.

A strategy gives each snapshot a weight in (0, 1]; the merged statistics are
the weighted sums of the inputs' ``[success, failure]`` weights, table by
table, so counts never become negative. The weights are relative — the
snapshot that counts most keeps its counts unchanged — so merging a single
snapshot gives it back as it was.

* :class:`Additive` — every weight 1: plain sums. Associative and commutative.
* :class:`TimeDecay` — ``0.5 ** (age / half_life_sessions)``, where the age of
  a snapshot is the number of sessions the newer snapshots summarise (the
  newest has age 0). An infinite half-life is Additive.
* :class:`SuccessWeighted` — each snapshot's episode success rate, at least
  ``floor`` (so a snapshot with no success still counts a little), divided by
  the largest of them.

The summary counts of the result (sessions, episodes, successes, actions)
are plain sums — they say what the merge covers; the weights shape what
the policies read. The offline model is the newest non-empty one. Inputs
must cover disjoint sessions (see :func:`check_disjoint`). Merging is pure:
:func:`merge_stored` reads and checks every source before it writes the one
new version, so a failed merge changes nothing in the store.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from swarmlearn._config import check_range
from swarmlearn.errors import ConfigError
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope, SnapshotStore, StoredSnapshot
from swarmlearn.learn.stats import LearnedStats

__all__ = [
    "Additive",
    "MergeKind",
    "MergeStrategy",
    "SuccessWeighted",
    "TimeDecay",
    "check_disjoint",
    "combine_stats",
    "merge",
    "merge_stored",
    "session_ages",
    "strategy_from_name",
]


class MergeKind(enum.StrEnum):
    ADDITIVE = "additive"
    TIME_DECAY = "time-decay"
    SUCCESS_WEIGHTED = "success-weighted"


class MergeStrategy(Protocol):
    """Weights snapshots for a merge: one weight in (0, 1] per snapshot, in input order."""

    @property
    def kind(self) -> MergeKind: ...

    def weights(self, snapshots: Sequence[LearningSnapshot]) -> list[float]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Additive:
    @property
    def kind(self) -> MergeKind:
        return MergeKind.ADDITIVE

    def weights(self, snapshots: Sequence[LearningSnapshot]) -> list[float]:
        return [1.0] * len(snapshots)

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.kind.value}


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeDecay:
    half_life_sessions: float

    def __post_init__(self) -> None:
        if math.isnan(self.half_life_sessions):
            raise ConfigError(
                "half_life_sessions: expected a number, got nan", field="half_life_sessions"
            )
        check_range("half_life_sessions", self.half_life_sessions, lo=0.0, lo_open=True)

    @property
    def kind(self) -> MergeKind:
        return MergeKind.TIME_DECAY

    def weights(self, snapshots: Sequence[LearningSnapshot]) -> list[float]:
        return [0.5 ** (age / self.half_life_sessions) for age in session_ages(snapshots)]

    def describe(self) -> dict[str, Any]:
        h = self.half_life_sessions
        return {"strategy": self.kind.value, "half_life_sessions": h if math.isfinite(h) else None}


@dataclass(frozen=True, kw_only=True, slots=True)
class SuccessWeighted:
    floor: float = 0.1

    def __post_init__(self) -> None:
        check_range("floor", self.floor, lo=0.0, hi=1.0, lo_open=True)

    @property
    def kind(self) -> MergeKind:
        return MergeKind.SUCCESS_WEIGHTED

    def weights(self, snapshots: Sequence[LearningSnapshot]) -> list[float]:
        raw = [max(self.floor, s.success_rate) for s in snapshots]
        top = max(raw, default=1.0)
        return [r / top for r in raw]

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.kind.value, "floor": self.floor}


def strategy_from_name(
    name: str | MergeKind, *, half_life: float | None = None, floor: float | None = None
) -> MergeStrategy:
    """The strategy ``additive``, ``time-decay`` (needs ``half_life``) or ``success-weighted``."""
    try:
        kind = MergeKind(name)
    except ValueError:
        known = ", ".join(MergeKind)
        raise ConfigError(
            f"strategy: expected one of {known}, got {name!r}", field="strategy", value=name
        ) from None
    if kind is MergeKind.TIME_DECAY:
        if half_life is None:
            raise ConfigError(
                "half_life: time-decay needs a half-life in sessions", field="half_life"
            )
        return TimeDecay(half_life_sessions=half_life)
    if kind is MergeKind.SUCCESS_WEIGHTED:
        return SuccessWeighted() if floor is None else SuccessWeighted(floor=floor)
    return Additive()


def session_ages(snapshots: Sequence[LearningSnapshot]) -> list[float]:
    """Each snapshot's age in sessions: how many sessions the newer snapshots summarise.

    Newer means a later ``created``; on a tie, the later one in the sequence.
    """
    order = sorted(range(len(snapshots)), key=lambda i: (snapshots[i].created, i), reverse=True)
    ages = [0.0] * len(snapshots)
    seen = 0
    for i in order:
        ages[i] = float(seen)
        seen += snapshots[i].sessions
    return ages


def check_disjoint(snapshots: Sequence[LearningSnapshot], names: Sequence[str]) -> None:
    """ConfigError if two snapshots summarise the same session (it would count twice)."""
    owner: dict[int, int] = {}
    for i, snap in enumerate(snapshots):
        for sid in snap.session_ids:
            j = owner.setdefault(sid, i)
            if j != i:
                raise ConfigError(
                    f"merge: {names[j]} and {names[i]} both summarise session {sid}; merging "
                    "them would count it twice (merge disjoint snapshots, e.g. per-session ones)"
                )


def combine_stats(parts: Sequence[tuple[LearnedStats, float]]) -> LearnedStats:
    """The weighted sum of statistics, table by table (weights must be >= 0)."""
    if not parts:
        return LearnedStats()
    tables = list(parts[0][0].size())
    acc: dict[str, dict[tuple[str, ...], list[float]]] = {t: {} for t in tables}
    episodes = [0.0, 0.0]
    events = 0
    decay, max_entries = 0.0, 0
    version: Any = None
    for stats, w in parts:
        if not (w >= 0.0 and math.isfinite(w)):
            raise ConfigError(f"merge: weight {w!r} is not a finite number >= 0", field="weights")
        d = stats.to_dict()
        version = d["format_version"]
        for t in tables:
            table = acc[t]
            for row in d[t]:
                key = tuple(row[:-2])
                c = table.get(key)
                if c is None:
                    c = table[key] = [0.0, 0.0]
                c[0] += w * row[-2]
                c[1] += w * row[-1]
        episodes[0] += w * d["episodes"][0]
        episodes[1] += w * d["episodes"][1]
        events += stats.events_seen
        decay = max(decay, stats.config.decay)
        max_entries = max(max_entries, stats.config.max_entries)
    data: dict[str, Any] = {
        "format_version": version,
        "config": {"decay": decay, "max_entries": max_entries},
        "episodes": episodes,
        "events_seen": events,
    }
    for t in tables:
        data[t] = [[*k, c[0], c[1]] for k, c in acc[t].items()]
    return LearnedStats.from_dict(data, where="merged statistics")


def _common(values: Sequence[Any], what: str) -> Any:
    distinct = sorted({str(v) for v in values})
    if len(distinct) != 1:
        raise ConfigError(
            f"merge: the snapshots have different {what}s ({', '.join(distinct)}); "
            f"say which {what} the result has",
            field=what,
        )
    return values[0]


def _newest_offline(snapshots: Sequence[LearningSnapshot]) -> tuple[dict[str, Any], float | None]:
    """The newest non-empty offline model and when it was made; ties broken by content,
    so neither the order nor the grouping of a merge changes which one wins."""
    models = [
        (s.offline_created, json.dumps(s.offline, sort_keys=True), s.offline)
        for s in snapshots
        if s.offline
    ]
    if not models:
        return {}, max(s.offline_created or s.created for s in snapshots)
    made, _, model = max(models, key=lambda m: (m[0], m[1]))
    return dict(model), made


def merge(
    snapshots: Sequence[LearningSnapshot],
    strategy: MergeStrategy | None = None,
    *,
    scope: SnapshotScope | str | None = None,
    key: str | None = None,
    scenario: str | None = None,
    names: Sequence[str] | None = None,
) -> LearningSnapshot:
    """Merge snapshots with ``strategy`` (default Additive) into a new snapshot.

    ``scope``/``key``/``scenario`` default to the inputs' own when they all
    agree. ``names`` label the inputs in error messages. The result's
    ``created`` is the newest input's, so merging one snapshot returns an
    equal one.
    """
    if not snapshots:
        raise ConfigError("merge: nothing to merge (no snapshots)")
    strategy = strategy or Additive()
    labels = list(names) if names is not None else [f"snapshot #{i}" for i in range(len(snapshots))]
    check_disjoint(snapshots, labels)
    weights = strategy.weights(snapshots)
    if len(weights) != len(snapshots):
        raise ConfigError(
            f"merge: {strategy.kind} gave {len(weights)} weights for {len(snapshots)} snapshots"
        )
    stats = combine_stats([(s.stats, w) for s, w in zip(snapshots, weights, strict=True)])
    scenarios = {s.scenario for s in snapshots}
    offline, offline_created = _newest_offline(snapshots)
    return LearningSnapshot(
        scope=SnapshotScope(scope)
        if scope is not None
        else _common([s.scope for s in snapshots], "scope"),
        key=key if key is not None else _common([s.key for s in snapshots], "key"),
        scenario=scenario
        if scenario is not None
        else (scenarios.pop() if len(scenarios) == 1 else ""),
        stats=stats,
        created=max(s.created for s in snapshots),
        sessions=sum(s.sessions for s in snapshots),
        session_ids=tuple(sorted(i for s in snapshots for i in s.session_ids)),
        episodes=sum(s.episodes for s in snapshots),
        successes=sum(s.successes for s in snapshots),
        actions=sum(s.actions for s in snapshots),
        solved_actions=sum(s.solved_actions for s in snapshots),
        offline=offline,
        offline_created=offline_created,
    )


def merge_stored(
    store: SnapshotStore,
    scope: SnapshotScope | str,
    key: str,
    strategy: MergeStrategy | None = None,
    *,
    latest: int | None = None,
    since: float | None = None,
    until: float | None = None,
    from_sessions: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> StoredSnapshot:
    """Merge stored snapshots and store the result as the next version of ``scope:key``.

    Sources: the versions of ``scope:key`` (the ``latest`` N, or those stored
    in [since, until], default all), or with ``from_sessions`` (scenario
    scope only) the session snapshots of scenario ``key``. Every source is
    decoded and checked first; any error leaves the store as it was.
    """
    scope = SnapshotScope(scope)
    strategy = strategy or Additive()
    sources: list[StoredSnapshot]
    if from_sessions:
        if scope is not SnapshotScope.SCENARIO:
            raise ConfigError(
                f"from_sessions: only a scenario snapshot is merged from its sessions, not {scope}",
                field="from_sessions",
            )
        sources = store.sessions_of(key, latest=latest)
    elif latest is not None:
        sources = store.latest_n(scope, key, latest)
    else:
        sources = store.between(scope, key, since, until)
    if not sources:
        what = f"session snapshots of scenario {key!r}" if from_sessions else f"{scope}:{key}"
        raise ConfigError(f"merge: no stored snapshots to merge ({what})")
    names = [f"{s.snapshot.name} v{s.version}" for s in sources]
    merged = merge([s.snapshot for s in sources], strategy, scope=scope, key=key, names=names)
    full = {**strategy.describe(), "merged_from": names, **(meta or {})}
    return store.save(merged, meta=full)
