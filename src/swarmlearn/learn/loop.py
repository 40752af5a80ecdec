"""Learning across sessions, and the proof of it: learning on against learning off.

With learning **on**, each session starts from the previous session's
snapshot (the learned statistics, saved to and loaded back from the store)
and the latest offline model (re-analysed every ``analyze_every`` sessions).
With learning **off**, each session starts from nothing: the same strategy
with default parameters and empty statistics (it still learns *within* the
session, as any bandit does). Both runs see the very same tasks, session by
session, so the comparison is paired.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmlearn._config import check_range
from swarmlearn._stats import ratio_ci, summarize, wilson
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import Scenario
from swarmlearn.learn.offline import AnalyzerConfig, OfflineAnalyzer, OfflineModel, policies_from
from swarmlearn.learn.policies import STRATEGIES, LearningPolicies, LearningState
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope, SnapshotStore
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import Store
from swarmlearn.types import OutcomeKind

__all__ = [
    "LearningReport",
    "LearningRunConfig",
    "SessionPoint",
    "load_state",
    "run_learning",
    "save_state",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class LearningRunConfig:
    sessions: int = 20
    episodes: int = 10
    seed: int = 10_000
    strategy: str = "adaptive"
    analyze_every: int = 5
    trials: int = 16
    last: int = 5

    def __post_init__(self) -> None:
        check_range("sessions", self.sessions, lo=1)
        check_range("episodes", self.episodes, lo=1)
        check_range("analyze_every", self.analyze_every, lo=0)
        check_range("trials", self.trials, lo=0)
        check_range("last", self.last, lo=1)
        if self.strategy not in STRATEGIES:
            from swarmlearn.errors import ConfigError

            raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got "
                              f"{self.strategy!r}", field="strategy", value=self.strategy)


@dataclass(slots=True)
class SessionPoint:
    index: int
    session: int
    successes: int
    episodes: int
    actions: list[int]
    actions_to_solve: list[int]
    model_version: int | None = None
    solved: list[bool] = field(default_factory=list)  # per episode, in order

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "session": self.session, "successes": self.successes,
                "episodes": self.episodes, "success_rate": self.success_rate,
                "actions": self.actions, "actions_to_solve": self.actions_to_solve,
                "solved": self.solved, "model_version": self.model_version}


def _point(index: int, session: int, episodes: Sequence[EpisodeEnded]) -> SessionPoint:
    won = [e for e in episodes if e.outcome.kind is OutcomeKind.SUCCESS]
    return SessionPoint(index, session, len(won), len(episodes), [e.actions for e in episodes],
                        [e.actions for e in won],
                        solved=[e.outcome.kind is OutcomeKind.SUCCESS for e in episodes])


@dataclass(slots=True)
class LearningReport:
    scenario: str
    config: LearningRunConfig
    on: list[SessionPoint] = field(default_factory=list)
    off: list[SessionPoint] = field(default_factory=list)
    model: OfflineModel | None = None
    wall_seconds: float = 0.0

    def final(self) -> dict[str, Any]:
        """The comparison over the last sessions: success (Wilson 95%), actions per
        solved task (delta-method 95%) and actions to solve (t 95%, solved tasks only).

        *Actions per solved task* is every action spent over the tasks solved:
        what solving a task costs, failed attempts included. The verdict on
        actions uses it because the solved-only mean is not comparable between
        two sides that fail different tasks (a side that fails its long tasks
        looks faster); the solved-only mean is reported beside it, and so is the
        paired difference on the tasks both sides solved (``paired``: how many
        fewer actions learning on took, t 95%).
        """
        out: dict[str, Any] = {}
        k = self.config.last
        for name, points in (("on", self.on), ("off", self.off)):
            tail = points[-k:]
            n = sum(p.episodes for p in tail)
            ok = sum(p.successes for p in tail)
            ats = summarize([float(a) for p in tail for a in p.actions_to_solve])
            aps = ratio_ci([float(a) for p in tail for a in p.actions],
                           [1.0 if s else 0.0 for p in tail for s in p.solved])
            out[name] = {"episodes": n, "successes": ok, "success_rate": ok / n if n else 0.0,
                         "success_ci": list(wilson(ok, n)),
                         "actions_per_solve": aps[0], "actions_per_solve_ci": [aps[1], aps[2]],
                         "actions_to_solve": ats.mean,
                         "actions_to_solve_ci": [ats.ci_low, ats.ci_high]}
        on, off = out["on"], out["off"]
        out["success_clearly_better"] = on["success_ci"][0] > off["success_ci"][1]
        out["actions_clearly_fewer"] = _clearly_lower(on, off, "actions_per_solve")
        out["solved_only_clearly_fewer"] = _clearly_lower(on, off, "actions_to_solve")
        # the same task on both sides, where both solved it: off's actions minus on's
        diffs = [float(b - a)
                 for p, q in zip(self.on[-k:], self.off[-k:], strict=True)
                 for a, b, sa, sb in zip(p.actions, q.actions, p.solved, q.solved, strict=True)
                 if sa and sb]
        paired = summarize(diffs)
        out["paired"] = {"tasks": paired.n, "fewer_actions_on": paired.mean,
                         "ci": [paired.ci_low, paired.ci_high]}
        out["clearly_better"] = out["success_clearly_better"] and out["actions_clearly_fewer"]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": 1, "scenario": self.scenario,
                "config": {k: getattr(self.config, k) for k in LearningRunConfig.__slots__},
                "on": [p.to_dict() for p in self.on], "off": [p.to_dict() for p in self.off],
                "final": self.final(), "model": self.model.to_dict() if self.model else None,
                "wall_seconds": self.wall_seconds}


def _clearly_lower(on: dict[str, Any], off: dict[str, Any], key: str) -> bool:
    """``on``'s interval lies wholly below ``off``'s (never when off has nothing to compare)."""
    lo_off = off[f"{key}_ci"][0]
    return bool(not math.isnan(lo_off) and on[f"{key}_ci"][1] < lo_off)


# -- what carries over between sessions: one scenario-scope snapshot per learning run ----
def save_state(store: Store, key: str, stats: LearnedStats, model: OfflineModel | None,
               episodes: Sequence[EpisodeEnded], sessions: Sequence[int]) -> int:
    """Store the learned state after a session as the next version of snapshot ``key``."""
    snap = LearningSnapshot.from_episodes(
        episodes, scope=SnapshotScope.SCENARIO, key=key, stats=stats,
        scenario=key.split("#", 1)[0], session_ids=sessions,
        offline=model.to_dict() if model is not None else None,
    )
    return SnapshotStore(store).save(snap).version


def load_state(store: Store, key: str) -> tuple[LearnedStats | None, OfflineModel | None]:
    """The statistics and offline model of the latest snapshot ``key`` (None, None if none)."""
    stored = SnapshotStore(store).latest(SnapshotScope.SCENARIO, key)
    if stored is None:
        return None, None
    snap = stored.snapshot
    where = f"snapshot {snap.name} v{stored.version}"
    model = OfflineModel.from_dict(dict(snap.offline), where=f"{where} offline model") \
        if snap.offline else None
    return snap.stats, model


def run_learning(
    scenario: Scenario,
    store: Store,
    config: LearningRunConfig | None = None,
    *,
    progress: Callable[[str, int, SessionPoint], None] | None = None,
) -> LearningReport:
    """Run ``sessions`` sessions with learning on, then off, on the same tasks."""
    from swarmlearn.session import run_session

    cfg = config or LearningRunConfig()
    sc = scenario.override(workers={"policy": cfg.strategy})
    group = f"learning-{int(time.time() * 1000)}"
    key = f"{sc.label}#{group}"
    analyzer = OfflineAnalyzer(store, AnalyzerConfig(trials=cfg.trials))
    report = LearningReport(sc.label, cfg)
    t0 = time.perf_counter()
    model: OfflineModel | None = None
    model_version: int | None = None
    on_sessions: list[int] = []
    history: list[EpisodeEnded] = []
    for i in range(cfg.sessions):
        stats, model = load_state(store, key)  # the previous session's snapshot, via the store
        policies = policies_from(stats, model)
        result = run_session(sc, store=store, seeds=_seeds(cfg, i), group=group,
                             kind="learning-on", policies=policies)
        on_sessions.append(result.session)
        history.extend(result.episodes)
        if cfg.analyze_every and (i + 1) % cfg.analyze_every == 0 and i + 1 < cfg.sessions:
            model = analyzer.analyze(sc, stats=policies.state.stats, sessions=on_sessions,
                                     previous=model)
            model.scenario = key
            model_version = analyzer.save(model)
        save_state(store, key, policies.state.stats, model, history, on_sessions)
        point = _point(i, result.session, result.episodes)
        point.model_version = model_version
        report.on.append(point)
        if progress is not None:
            progress("on", i, point)
    report.model = model
    for i in range(cfg.sessions):
        policies = LearningPolicies(cfg.strategy, LearningState())
        result = run_session(sc, store=store, seeds=_seeds(cfg, i), group=group,
                             kind="learning-off", policies=policies)
        point = _point(i, result.session, result.episodes)
        report.off.append(point)
        if progress is not None:
            progress("off", i, point)
    report.wall_seconds = time.perf_counter() - t0
    return report


def _seeds(cfg: LearningRunConfig, session: int) -> list[int]:
    start = cfg.seed + session * cfg.episodes
    return list(range(start, start + cfg.episodes))
