"""The component learners of a scenario profile, each updated incrementally.

* :class:`DependencyGraphLearner` — per episode: in a successful episode, an
  edge A → B is seen when a *successful* B on a target follows a successful A
  on the same target (failed attempts prove nothing about order). Edges are
  reported once at least ``min_episodes`` (3) successful episodes were seen,
  and only those that held in at least ``min_confidence`` of the successful
  episodes where B succeeded on a target.
* :class:`ExplorationLearner` — per session: running means of success rate
  and actions per episode for each value tried of each exploration parameter
  (``ucb1_c``, ``epsilon`` …); the best value is the one with the highest
  mean success, then the fewest actions.
* :class:`StrategyLearner` — per episode: episodes and wins per selection
  strategy; the best has the highest posterior mean ``(wins + 1) / (n + 2)``.

Each has ``to_dict``/``from_dict``; malformed data is an ``ArtifactError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmlearn._config import check_range
from swarmlearn.core.events import ActionEvent
from swarmlearn.errors import ArtifactError
from swarmlearn.learn import _payload as P

__all__ = [
    "DependencyConfig",
    "DependencyGraphLearner",
    "Edge",
    "Estimate",
    "ExplorationLearner",
    "StrategyLearner",
    "StrategyScore",
]


def _rows(data: Any, name: str, width: int, where: str) -> list[list[Any]]:
    rows = P.get_list(data, name, where=where, default=[])
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise ArtifactError(f"{where}: each row of {name!r} should have {width} items: {row!r}")
    return rows


def _count(value: Any, what: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ArtifactError(f"{where}: {what} should be a count >= 0, got {value!r}")
    return value


# -- dependency graph ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class DependencyConfig:
    min_episodes: int = 3  # successful episodes before a graph is reported
    min_confidence: float = 0.8  # share of B's successful episodes in which A preceded it

    def __post_init__(self) -> None:
        check_range("min_episodes", self.min_episodes, lo=1)
        check_range("min_confidence", self.min_confidence, lo=0.0, hi=1.0, lo_open=True)


@dataclass(frozen=True, slots=True)
class Edge:
    before: str
    after: str
    support: int  # successful episodes in which the edge held
    confidence: float  # support / successful episodes in which ``after`` succeeded


class DependencyGraphLearner:
    """Learns which action kinds must precede which on the same target."""

    def __init__(self, config: DependencyConfig | None = None) -> None:
        self.config = config or DependencyConfig()
        self.episodes = 0  # successful episodes seen
        self.edge_counts: dict[tuple[str, str], int] = {}
        self.action_counts: dict[str, int] = {}  # successful episodes where B succeeded

    def observe_episode(self, events: Iterable[ActionEvent], won: bool) -> None:
        """Learn from one episode's action events (in any order; sorted by id)."""
        if not won:
            return
        done: dict[str, set[str]] = {}
        edges: set[tuple[str, str]] = set()
        actions: set[str] = set()
        for e in sorted(events, key=lambda e: e.id):
            if not e.result.success or not e.target:
                continue
            before = done.setdefault(e.target, set())
            edges.update((a, e.action) for a in before if a != e.action)
            actions.add(e.action)
            before.add(e.action)
        self.episodes += 1
        for edge in edges:
            self.edge_counts[edge] = self.edge_counts.get(edge, 0) + 1
        for a in actions:
            self.action_counts[a] = self.action_counts.get(a, 0) + 1

    @property
    def ready(self) -> bool:
        return self.episodes >= self.config.min_episodes

    def edges(self) -> list[Edge]:
        """Every edge seen, strongest first (confidence, support, names)."""
        out = [Edge(a, b, n, n / self.action_counts[b]) for (a, b), n in self.edge_counts.items()]
        out.sort(key=lambda e: (-e.confidence, -e.support, e.before, e.after))
        return out

    def graph(self) -> dict[str, tuple[str, ...]] | None:
        """Action → the actions it needs first; None until ``min_episodes`` successes."""
        if not self.ready:
            return None
        graph: dict[str, list[str]] = {}
        for e in self.edges():
            if e.confidence >= self.config.min_confidence:
                graph.setdefault(e.after, []).append(e.before)
        return {b: tuple(sorted(a)) for b, a in sorted(graph.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {
                "min_episodes": self.config.min_episodes,
                "min_confidence": self.config.min_confidence,
            },
            "episodes": self.episodes,
            "edges": [[a, b, n] for (a, b), n in sorted(self.edge_counts.items())],
            "actions": [[a, n] for a, n in sorted(self.action_counts.items())],
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "dependencies") -> DependencyGraphLearner:
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected an object, got {data!r}")
        cfg = P.get_map(data, "config", where=where, default={})
        learner = cls(
            DependencyConfig(
                min_episodes=P.get_int(cfg, "min_episodes", where=where, default=3, lo=1),
                min_confidence=P.get_float(cfg, "min_confidence", where=where, default=0.8),
            )
        )
        learner.episodes = P.get_int(data, "episodes", where=where)
        for a, b, n in _rows(data, "edges", 3, where):
            learner.edge_counts[(str(a), str(b))] = _count(n, f"edge {a}→{b}", where)
        for a, n in _rows(data, "actions", 2, where):
            learner.action_counts[str(a)] = _count(n, f"action {a}", where)
        if any(b not in learner.action_counts for _, b in learner.edge_counts):
            raise ArtifactError(f"{where}: an edge leads to an action with no count")
        return learner


# -- exploration parameters ------------------------------------------------------------------
@dataclass(slots=True)
class Estimate:
    """Running means over the sessions that used one parameter value."""

    sessions: int = 0
    episodes: int = 0
    success: float = 0.0  # mean success rate, weighted by episodes
    actions: float = 0.0  # mean actions per episode, weighted by episodes

    def add(self, episodes: int, success_rate: float, actions_per_episode: float) -> None:
        self.sessions += 1
        self.episodes += episodes
        if self.episodes:
            k = episodes / self.episodes
            self.success += (success_rate - self.success) * k
            self.actions += (actions_per_episode - self.actions) * k


class ExplorationLearner:
    """Which values of the exploration parameters gave the best sessions."""

    def __init__(self) -> None:
        self.estimates: dict[str, dict[float, Estimate]] = {}

    def observe_session(
        self,
        params: Mapping[str, float],
        *,
        episodes: int,
        success_rate: float,
        actions_per_episode: float,
    ) -> None:
        for name, value in params.items():
            table = self.estimates.setdefault(name, {})
            est = table.get(float(value))
            if est is None:
                est = table[float(value)] = Estimate()
            est.add(episodes, success_rate, actions_per_episode)

    def best(self, param: str, *, min_sessions: int = 1) -> float | None:
        """The value with the highest mean success (then fewest actions); None if untried."""
        table = self.estimates.get(param, {})
        tried = [(v, e) for v, e in table.items() if e.sessions >= min_sessions]
        if not tried:
            return None
        return min(tried, key=lambda ve: (-ve[1].success, ve[1].actions, ve[0]))[0]

    def recommend(self, *, min_sessions: int = 1) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in sorted(self.estimates):
            value = self.best(name, min_sessions=min_sessions)
            if value is not None:
                out[name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimates": [
                [name, v, e.sessions, e.episodes, e.success, e.actions]
                for name, table in sorted(self.estimates.items())
                for v, e in sorted(table.items())
            ]
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "exploration") -> ExplorationLearner:
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected an object, got {data!r}")
        learner = cls()
        for name, value, sessions, episodes, success, actions in _rows(data, "estimates", 6, where):
            row = {"value": value, "success": success, "actions": actions}
            est = Estimate(
                sessions=_count(sessions, f"sessions of {name}={value}", where),
                episodes=_count(episodes, f"episodes of {name}={value}", where),
                success=P.get_float(row, "success", where=where),
                actions=P.get_float(row, "actions", where=where),
            )
            v = P.get_float(row, "value", where=where, lo=None)
            learner.estimates.setdefault(str(name), {})[v] = est
        return learner


# -- selection strategies ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StrategyScore:
    strategy: str
    episodes: int
    wins: int
    actions_to_solve: float  # mean actions of the won episodes (NaN if none)

    @property
    def posterior_mean(self) -> float:
        return (self.wins + 1) / (self.episodes + 2)


class StrategyLearner:
    """Episodes and wins per selection strategy (what to start the next session with)."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}  # strategy → [episodes, wins, actions of wins]

    def observe_episode(self, strategy: str, won: bool, actions: int) -> None:
        c = self.counts.setdefault(strategy, [0, 0, 0])
        c[0] += 1
        if won:
            c[1] += 1
            c[2] += actions

    def ranking(self) -> list[StrategyScore]:
        scores = [
            StrategyScore(s, n, w, a / w if w else math.nan) for s, (n, w, a) in self.counts.items()
        ]
        scores.sort(
            key=lambda x: (
                -x.posterior_mean,
                x.actions_to_solve if x.wins else math.inf,
                x.strategy,
            )
        )
        return scores

    def best(self) -> str | None:
        """The strategy with the best posterior mean win rate; None before any episode."""
        ranked = self.ranking()
        return ranked[0].strategy if ranked else None

    def to_dict(self) -> dict[str, Any]:
        return {"strategies": [[s, *c] for s, c in sorted(self.counts.items())]}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "strategies") -> StrategyLearner:
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected an object, got {data!r}")
        learner = cls()
        for name, n, w, a in _rows(data, "strategies", 4, where):
            counts = [_count(x, f"a count of strategy {name}", where) for x in (n, w, a)]
            if counts[1] > counts[0]:
                raise ArtifactError(f"{where}: strategy {name} won more episodes than it ran")
            learner.counts[str(name)] = counts
        return learner
