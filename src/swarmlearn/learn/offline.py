"""Offline analysis across the recorded sessions of a scenario → an offline model.

The model the next session loads holds:

* **parameters** (``ucb1_c``, ``learning_weight``, ``ngram_weight``,
  ``maturity``) found by an Optuna TPE search whose objective replays the
  *recorded tasks* (their seeds) with the learned statistics, warm-started
  from the parameters the recorded sessions and the previous model used;
* **recommended paths**: frequent contiguous action sequences of successful
  episodes (with their support and success lift);
* a **learned action order** (where each action sits in successful episodes);
* a **learned dependency graph** (needs >= 3 successful episodes): A → B when a
  successful B on a target was preceded by a successful A on the same target
  in at least ``dependency_ratio`` of the cases, plus any-of groups (B needs
  one of A1, A2) when no single action is required but together they are;
* a **strategy config**: the selection strategy that did best, by the
  strategy statistics.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swarmlearn._config import check_range
from swarmlearn.core.events import ActionEvent
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ArtifactError, StoreError
from swarmlearn.learn.policies import STRATEGIES, LearningPolicies, LearningState, PolicyConfig
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import EventQuery, Store
from swarmlearn.types import OutcomeKind

if TYPE_CHECKING:
    from swarmlearn.lifecycle import Produced

__all__ = [
    "AnalyzerConfig",
    "OfflineAnalyzer",
    "OfflineModel",
    "action_order",
    "dependency_graph",
    "recommended_paths",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARTIFACT_KIND = "offline_model"
SEARCHED = ("ucb1_c", "learning_weight", "ngram_weight", "maturity")


@dataclass(frozen=True, kw_only=True, slots=True)
class AnalyzerConfig:
    trials: int = 24
    trial_episodes: int = 12
    min_support: int = 3
    dependency_ratio: float = 0.8
    max_path_len: int = 5
    max_sessions: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("trials", self.trials, lo=0)
        check_range("trial_episodes", self.trial_episodes, lo=1)
        check_range("min_support", self.min_support, lo=1)
        check_range("dependency_ratio", self.dependency_ratio, lo=0.5, hi=1.0)
        check_range("max_path_len", self.max_path_len, lo=2, hi=10)
        check_range("max_sessions", self.max_sessions, lo=1)


@dataclass(slots=True)
class OfflineModel:
    scenario: str
    params: dict[str, float] = field(default_factory=dict)
    strategy: str = "adaptive"
    strategy_scores: dict[str, float] = field(default_factory=dict)
    action_order: list[str] = field(default_factory=list)
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # B → required A's
    any_of: dict[str, list[list[str]]] = field(default_factory=dict)  # B → groups, one each
    paths: list[dict[str, Any]] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)
    sessions: list[int] = field(default_factory=list)
    episodes: int = 0
    successes: int = 0
    created: float = field(default_factory=time.time)

    def policy_config(self, base: PolicyConfig | None = None) -> PolicyConfig:
        from dataclasses import replace

        known: dict[str, Any] = {k: v for k, v in self.params.items()
                                 if k in PolicyConfig.__slots__}
        if "maturity" in known:
            known["maturity"] = round(known["maturity"])
        return replace(base or PolicyConfig(), **known)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **{k: getattr(self, k) for k in self.__slots__}}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "offline model") -> OfflineModel:
        if not isinstance(data, dict):
            raise ArtifactError(f"{where}: expected an object")
        if data.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"{where}: format_version {data.get('format_version')!r} is not "
                                f"supported (expected {FORMAT_VERSION})")
        try:
            kwargs = {k: data[k] for k in cls.__slots__ if k in data}
            model = cls(**kwargs)
        except TypeError as exc:
            raise ArtifactError(f"{where}: {exc}") from exc
        if model.strategy not in STRATEGIES:
            raise ArtifactError(f"{where}: unknown strategy {model.strategy!r}")
        return model


# -- episode reconstruction --------------------------------------------------------
@dataclass(slots=True)
class _Episode:
    won: bool
    seed: int
    events: list[ActionEvent]


def _episodes(store: Store, sessions: Sequence[int]) -> list[_Episode]:
    out: list[_Episode] = []
    for sid in sessions:
        ends = store.episodes(session=sid)
        events = list(store.events(EventQuery(session=sid)))
        i = 0
        for end in ends:
            eps: list[ActionEvent] = []
            while i < len(events) and events[i].id <= end.last_event:
                if events[i].id >= end.first_event:
                    eps.append(events[i])
                i += 1
            out.append(_Episode(end.outcome.kind is OutcomeKind.SUCCESS, end.seed, eps))
    return out


def _worker_paths(ep: _Episode) -> Iterable[list[str]]:
    by_worker: dict[int, list[str]] = defaultdict(list)
    for e in ep.events:
        by_worker[e.worker].append(f"{e.action}@{e.context}" if e.context else e.action)
    return by_worker.values()


# -- the pure parts ------------------------------------------------------------------
def dependency_graph(
    episodes: Sequence[Sequence[ActionEvent]], ratio: float = 0.8
) -> tuple[dict[str, list[str]], dict[str, list[list[str]]]]:
    """Required predecessors and any-of groups of each action, from successful episodes.

    For every successful action B on a target, collect which actions had
    already succeeded on that target in the episode. A is required for B if
    that held in >= ``ratio`` of B's cases; a pair (A1, A2) is an any-of
    group if neither is required but one of them preceded B that often.
    """
    cases, before, pair = _precedence(episodes)
    required: dict[str, list[str]] = {}
    any_of: dict[str, list[list[str]]] = {}
    for b, n in cases.items():
        req = sorted(a for a, k in before[b].items() if k / n >= ratio)
        if req:
            required[b] = req
        singles = {a: k / n for a, k in before[b].items() if a not in req}
        groups = []
        for a1, a2 in itertools.combinations(sorted(singles), 2):
            # P(a1 or a2 before b) = P(a1) + P(a2) - P(both)
            either = (before[b][a1] + before[b][a2] - pair[b][(a1, a2)]) / n
            if either >= ratio:
                groups.append([a1, a2])
        if groups:
            any_of[b] = sorted(groups)
    return _reduce(required), any_of


def _precedence(
    episodes: Sequence[Sequence[ActionEvent]],
) -> tuple[Counter[str], dict[str, Counter[str]], dict[str, Counter[tuple[str, str]]]]:
    """For each successful action: how often, and which (pairs of) actions preceded it
    successfully on the same target."""
    cases: Counter[str] = Counter()
    before: dict[str, Counter[str]] = defaultdict(Counter)
    pair: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for events in episodes:
        done: dict[str, set[str]] = defaultdict(set)
        for e in events:
            if not e.result.success or not e.target:
                continue
            prior = done[e.target]
            cases[e.action] += 1
            names = sorted(prior - {e.action})
            before[e.action].update(names)
            pair[e.action].update(itertools.combinations(names, 2))
            prior.add(e.action)
    return cases, before, pair


def _reduce(required: dict[str, list[str]]) -> dict[str, list[str]]:
    """Transitive reduction: drop A → C when A → B → C."""
    out: dict[str, list[str]] = {}
    for c, preds in required.items():
        implied = {a for b in preds for a in required.get(b, [])}
        out[c] = [a for a in preds if a not in implied]
    return out


def action_order(episodes: Sequence[Sequence[ActionEvent]], names: Iterable[str] = ()) -> list[str]:
    """Actions by their mean relative position of first success in successful episodes."""
    pos: dict[str, list[float]] = defaultdict(list)
    for events in episodes:
        n = max(1, len(events) - 1)
        seen: set[str] = set()
        for i, e in enumerate(events):
            if e.result.success and e.action not in seen:
                seen.add(e.action)
                pos[e.action].append(i / n)
    ranked = sorted(pos, key=lambda a: (sum(pos[a]) / len(pos[a]), a))
    rest = sorted(set(names) - set(ranked))
    return ranked + rest


def recommended_paths(
    won: Sequence[Iterable[Sequence[str]]],
    lost: Sequence[Iterable[Sequence[str]]],
    *,
    min_support: int = 3,
    max_len: int = 5,
    top: int = 10,
) -> list[dict[str, Any]]:
    """Frequent contiguous sequences of successful episodes, with their success lift."""

    def grams(paths: Iterable[Sequence[str]]) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for p in paths:
            for n in range(2, max_len + 1):
                for i in range(len(p) - n + 1):
                    out.add(tuple(p[i:i + n]))
        return out

    support: Counter[tuple[str, ...]] = Counter()
    against: Counter[tuple[str, ...]] = Counter()
    for ep in won:
        support.update(grams(ep))
    for ep in lost:
        against.update(grams(ep))
    total = len(won) + len(lost)
    base = len(won) / total if total else 0.0
    ranked: list[tuple[float, tuple[str, ...], int, float]] = []
    for g, k in support.items():
        if k >= min_support:
            rate = k / (k + against[g])
            ranked.append((-k * rate * len(g), g, k, rate))
    ranked.sort()
    return [{"path": list(g), "support": k, "success_rate": round(rate, 4),
             "lift": round(rate / base, 4) if base else 0.0} for _, g, k, rate in ranked[:top]]


def best_strategy(
    stats: LearnedStats | None, default: str = "adaptive"
) -> tuple[str, dict[str, float]]:
    """The strategy with the best (smoothed) episode success rate, and all scores."""
    if stats is None:
        return default, {}
    scores: dict[str, float] = {}
    for name, (s, f) in ((k, stats.get(stats.strategies, k)) for k in stats.strategies):
        base = name.split(":", 1)[0]
        if base in STRATEGIES and s + f >= 5:
            scores[name] = (s + 1) / (s + f + 2)
    if not scores:
        return default, scores
    best = max(scores, key=lambda k: scores[k]).split(":", 1)[0]
    return best, scores


class OfflineAnalyzer:
    """Analyses a scenario's recorded sessions and stores the offline model."""

    def __init__(self, store: Store, config: AnalyzerConfig | None = None) -> None:
        self.store = store
        self.config = config or AnalyzerConfig()

    def analyze(
        self,
        scenario: Scenario,
        *,
        stats: LearnedStats | None = None,
        sessions: Sequence[int] | None = None,
        previous: OfflineModel | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> OfflineModel:
        cfg = self.config
        if sessions is None:
            recs = self.store.sessions(scenario=scenario.name, limit=cfg.max_sessions)
            sessions = [s.id for s in recs if s.variant == scenario.variant]
        episodes = _episodes(self.store, sessions)
        won = [ep for ep in episodes if ep.won]
        lost = [ep for ep in episodes if not ep.won]
        names = {e.action for ep in episodes for e in ep.events}
        model = OfflineModel(scenario=scenario.label, sessions=list(sessions),
                             episodes=len(episodes), successes=len(won))
        if len(won) >= 3:
            model.dependencies, model.any_of = dependency_graph(
                [ep.events for ep in won], cfg.dependency_ratio)
        model.action_order = action_order([ep.events for ep in won], names)
        model.paths = recommended_paths([list(_worker_paths(ep)) for ep in won],
                                        [list(_worker_paths(ep)) for ep in lost],
                                        min_support=cfg.min_support, max_len=cfg.max_path_len)
        model.strategy, model.strategy_scores = best_strategy(stats, previous.strategy
                                                              if previous else "adaptive")
        seeds = sorted({ep.seed for ep in episodes})[-cfg.trial_episodes:]
        model.params, model.search = self._search(scenario, stats, model, seeds, previous,
                                                  sessions, progress)
        return model

    def _search(
        self, scenario: Scenario, stats: LearnedStats | None, model: OfflineModel,
        seeds: list[int], previous: OfflineModel | None, sessions: Sequence[int],
        progress: Callable[[int, int], None] | None,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        cfg = self.config
        defaults = PolicyConfig()
        start = {k: float(getattr(defaults, k)) for k in SEARCHED}
        if cfg.trials == 0 or not seeds:
            return (dict(previous.params) if previous else start), {"trials": 0}
        from swarmlearn.learn._search import search_params

        warm = [start]
        if previous is not None and previous.params:
            warm.append(dict(previous.params))
        warm.extend(self._recorded_params(sessions))
        return search_params(scenario, stats, model.strategy, model.action_order, seeds,
                             trials=cfg.trials, seed=cfg.seed, warm=warm, progress=progress)

    def _recorded_params(self, sessions: Sequence[int]) -> list[dict[str, float]]:
        out = []
        for sid in sessions[-5:]:
            try:
                params = self.store.session(sid).config.get("workers", {}).get("policy_params", {})
            except StoreError:
                continue
            picked = {k: float(v) for k, v in params.items() if k in SEARCHED}
            if picked:
                out.append(picked)
        return out

    # -- persistence -------------------------------------------------------------------
    def produced(self, model: OfflineModel, *, sessions: Sequence[int] = (),
                 parent: int | None = None, stats_from: int | None = None) -> Produced:
        """``model`` as a lifecycle artifact: its payload, summary and lineage (the
        sessions it was analysed from, the model and snapshot it started from, the
        analyzer's settings and the search's result)."""
        from swarmlearn.lifecycle import Lineage, Produced

        cfg = self.config
        return Produced(
            payload=model.to_json(), format_version=FORMAT_VERSION,
            summary={"episodes": model.episodes, "successes": model.successes,
                     "strategy": model.strategy},
            lineage=Lineage(parent=parent,
                            inputs={"scenario": model.scenario, "sessions": list(sessions),
                                    "stats_from": stats_from},
                            config={"trials": cfg.trials, "max_sessions": cfg.max_sessions,
                                    "seed": cfg.seed},
                            metrics={"params": dict(model.params),
                                     "best": model.search.get("best_value")}))

    def save(self, model: OfflineModel, *, sessions: Sequence[int] = (),
             parent: int | None = None, stats_from: int | None = None,
             reason: str = "offline analysis") -> int:
        """Register ``model`` as the next version of its scenario's ``offline_model``
        lineage: a lifecycle candidate (:class:`~swarmlearn.lifecycle.Lifecycle`,
        scope = the scenario label) with its lineage; the gate (the daemon's, or a
        person's ``swarmlearn artifacts promote``) decides whether it goes live.
        Returns its version."""
        from swarmlearn.lifecycle import Lifecycle

        version = Lifecycle(self.store, ARTIFACT_KIND, model.scenario).register(
            self.produced(model, sessions=sessions, parent=parent, stats_from=stats_from),
            reason=reason)
        return version.version

    def load(self, scenario_label: str, version: int | None = None) -> OfflineModel | None:
        """Version ``version`` of the scenario's model (default: the latest, whatever its
        lifecycle state; the champion is ``Lifecycle(...).champion()``), None if none."""
        try:
            rec = self.store.get_artifact(ARTIFACT_KIND, scenario_label, version)
        except StoreError:
            return None
        where = f"offline model {scenario_label} v{rec.version}"
        try:
            data = json.loads(rec.payload or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{where}: not JSON ({exc})") from exc
        return OfflineModel.from_dict(data, where=where)


def make_state(stats: LearnedStats | None, model: OfflineModel | None) -> LearningState:
    """The shared policy state for a session that starts from ``stats`` and ``model``."""
    if model is None:
        return LearningState(stats.copy() if stats is not None else None)
    return LearningState(stats.copy() if stats is not None else None, model.policy_config(),
                         action_order=model.action_order)


def policies_from(stats: LearnedStats | None, model: OfflineModel | None,
                  strategy: str | None = None) -> LearningPolicies:
    """Policies for the next session: the model's strategy and parameters, the learned stats."""
    chosen = strategy or (model.strategy if model else "adaptive")
    return LearningPolicies(chosen, make_state(stats, model))
