"""Learning across sessions, and the proof of it: learning on against learning off.

With learning **on**, each session starts from the previous session's
snapshot (the learned statistics, saved to and loaded back from the store)
and the latest offline model (re-analysed every ``analyze_every`` sessions).
With learning **off**, each session starts from nothing: the same strategy
with default parameters and empty statistics (it still learns *within* the
session, as any bandit does). Both sides of a run see the very same tasks
with the same worker seed, session by session, so a run is paired.

:func:`run_learning` is one such run; :func:`run_proof` repeats it over
independent runs (their own task-seed block, worker seed and search seed) and
:class:`ProofSummary` puts Student-t intervals over the per-run figures and
gives the verdict (docs/learning.md, "Proof of learning").

With a :class:`HiddenSignal` (``signal=``) the environment's outcome never
reaches the swarm: both sides are told the judge's outcome of each episode
(e.g. what a simulated person's feedback says, docs/feedback.md) and the
figures are measured on the environment's own outcome, which only the judge
keeps.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from swarmlearn._config import check_range
from swarmlearn._stats import ratio_ci, summarize, wilson
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import Scenario, WorkerKind
from swarmlearn.core.swarm import OutcomeJudge
from swarmlearn.errors import ConfigError
from swarmlearn.learn.offline import AnalyzerConfig, OfflineAnalyzer, OfflineModel, policies_from
from swarmlearn.learn.policies import STRATEGIES, LearningPolicies, LearningState
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope, SnapshotStore
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import SqlStore, Store
from swarmlearn.types import Outcome, OutcomeKind

__all__ = [
    "HiddenSignal",
    "Interval",
    "LearningProof",
    "LearningReport",
    "LearningRunConfig",
    "ProofSummary",
    "RunFigures",
    "SessionPoint",
    "SideFigures",
    "Verdict",
    "load_state",
    "run_learning",
    "run_proof",
    "save_state",
    "summarize_runs",
    "verdict",
]

logger = logging.getLogger(__name__)


class HiddenSignal(OutcomeJudge, Protocol):
    """An outcome judge (core.swarm.OutcomeJudge) that also keeps the outcomes it hid."""

    def truth(self, ended: EpisodeEnded) -> Outcome:
        """The environment's outcome of an episode this judge judged."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class LearningRunConfig:
    """One run: ``sessions`` × ``episodes`` tasks a side; ``runs`` independent runs a proof.

    Run ``r`` plays the task seeds ``seed + r·sessions·episodes`` onwards with
    worker seed ``scenario.seeds.workers + r`` and TPE seed ``r``.
    """

    sessions: int = 20
    episodes: int = 10
    seed: int = 10_000
    strategy: str = "adaptive"
    analyze_every: int = 5
    trials: int = 16
    last: int = 5
    runs: int = 5

    def __post_init__(self) -> None:
        check_range("sessions", self.sessions, lo=1)
        check_range("episodes", self.episodes, lo=1)
        check_range("analyze_every", self.analyze_every, lo=0)
        check_range("trials", self.trials, lo=0)
        check_range("last", self.last, lo=1)
        check_range("runs", self.runs, lo=1)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got "
                              f"{self.strategy!r}", field="strategy", value=self.strategy)

    @property
    def block(self) -> int:
        """Task seeds per run (and per side)."""
        return self.sessions * self.episodes

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


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


def _both_solved(on: Sequence[SessionPoint], off: Sequence[SessionPoint]) -> list[float]:
    """Off's actions minus on's, task by task, on the tasks both sides solved."""
    return [float(b - a)
            for p, q in zip(on, off, strict=True)
            for a, b, sa, sb in zip(p.actions, q.actions, p.solved, q.solved, strict=True)
            if sa and sb]


@dataclass(frozen=True, slots=True)
class SideFigures:
    """One side of one run over its last sessions: point figures (no interval)."""

    episodes: int
    successes: int
    actions: int  # every action spent
    solved_actions: int  # the actions of the tasks solved

    @classmethod
    def of(cls, points: Sequence[SessionPoint]) -> SideFigures:
        return cls(sum(p.episodes for p in points), sum(p.successes for p in points),
                   sum(sum(p.actions) for p in points),
                   sum(sum(p.actions_to_solve) for p in points))

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def actions_per_solve(self) -> float:
        """Every action spent over the tasks solved (NaN when none was solved)."""
        return self.actions / self.successes if self.successes else math.nan

    @property
    def actions_to_solve(self) -> float:
        """Mean actions over the solved tasks only (NaN when none was solved)."""
        return self.solved_actions / self.successes if self.successes else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "successes": self.successes,
                "success_rate": self.success_rate, "actions": self.actions,
                "actions_per_solve": self.actions_per_solve,
                "actions_to_solve": self.actions_to_solve}


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What one learning run measured over its last sessions, both sides."""

    run: int
    first_seed: int
    worker_seed: int
    on: SideFigures
    off: SideFigures
    paired_tasks: int  # tasks both sides solved
    fewer_actions_on: float  # mean of off - on over those tasks (NaN if none)

    @property
    def success_gain(self) -> float:
        return self.on.success_rate - self.off.success_rate

    @property
    def actions_saved(self) -> float:
        """Off's actions per solved task minus on's (NaN if a side solved nothing)."""
        return self.off.actions_per_solve - self.on.actions_per_solve

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "first_seed": self.first_seed, "worker_seed": self.worker_seed,
                "on": self.on.to_dict(), "off": self.off.to_dict(),
                "success_gain": self.success_gain, "actions_saved": self.actions_saved,
                "paired_tasks": self.paired_tasks, "fewer_actions_on": self.fewer_actions_on}


@dataclass(slots=True)
class LearningReport:
    """One learning run: every session's point, on and off."""

    scenario: str
    config: LearningRunConfig
    on: list[SessionPoint] = field(default_factory=list)
    off: list[SessionPoint] = field(default_factory=list)
    model: OfflineModel | None = None
    wall_seconds: float = 0.0
    run: int = 0
    first_seed: int = 0
    worker_seed: int = 0

    def figures(self) -> RunFigures:
        """This run's figures over its last ``config.last`` sessions."""
        k = self.config.last
        diffs = _both_solved(self.on[-k:], self.off[-k:])
        return RunFigures(self.run, self.first_seed, self.worker_seed,
                          SideFigures.of(self.on[-k:]), SideFigures.of(self.off[-k:]),
                          len(diffs), math.fsum(diffs) / len(diffs) if diffs else math.nan)

    def final(self) -> dict[str, Any]:
        """Within this one run, over its last sessions: success (Wilson 95%), actions per
        solved task (delta-method 95%), actions to solve (t 95%, solved tasks only) and
        the paired difference on the tasks both sides solved (``paired``, t 95%).

        These intervals treat the episodes of one learning trajectory as
        independent, which they are not: they describe the run, they are not
        the proof. The proof's intervals are over independent runs
        (:class:`ProofSummary`).
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
        paired = summarize(_both_solved(self.on[-k:], self.off[-k:]))
        out["paired"] = {"tasks": paired.n, "fewer_actions_on": paired.mean,
                         "ci": [paired.ci_low, paired.ci_high]}
        out["clearly_better"] = out["success_clearly_better"] and out["actions_clearly_fewer"]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": 2, "scenario": self.scenario, "config": self.config.to_dict(),
                "run": self.run, "first_seed": self.first_seed, "worker_seed": self.worker_seed,
                "figures": self.figures().to_dict(), "within_run": self.final(),
                "on": [p.to_dict() for p in self.on], "off": [p.to_dict() for p in self.off],
                "model": self.model.to_dict() if self.model else None,
                "wall_seconds": self.wall_seconds}


def _clearly_lower(on: dict[str, Any], off: dict[str, Any], key: str) -> bool:
    """``on``'s interval lies wholly below ``off``'s (never when off has nothing to compare)."""
    lo_off = off[f"{key}_ci"][0]
    return bool(not math.isnan(lo_off) and on[f"{key}_ci"][1] < lo_off)


# -- the proof: intervals over independent runs, and the verdict ---------------------------
@dataclass(frozen=True, slots=True)
class Interval:
    """The mean of per-run values and its Student-t 95% interval.

    NaN values (a side that solved nothing has no actions per solved task)
    are left out and ``n`` counts the rest; below 2 values there is no
    interval (NaN bounds), so nothing lies "wholly above" anything.
    """

    n: int
    mean: float
    low: float
    high: float

    @classmethod
    def over(cls, values: Sequence[float]) -> Interval:
        s = summarize([v for v in values if not math.isnan(v)])
        if s.n < 2:
            return cls(s.n, s.mean, math.nan, math.nan)
        return cls(s.n, s.mean, s.ci_low, s.ci_high)

    @property
    def above_zero(self) -> bool:
        return self.low > 0.0  # False for NaN

    @property
    def below_zero(self) -> bool:
        return self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "low": self.low, "high": self.high}


class Verdict(enum.StrEnum):
    CLEARLY_BETTER = "clearly better"
    NOT_CLEARLY_BETTER = "not clearly better"
    CLEARLY_WORSE = "clearly worse"
    NO_VERDICT = "no verdict"


def verdict(success_gain: Interval, actions_saved: Interval) -> tuple[Verdict, str]:
    """The rule of docs/learning.md: both per-run-difference intervals wholly above 0."""
    if success_gain.n < 2:
        return Verdict.NO_VERDICT, f"needs at least 2 runs, got {success_gain.n}"
    parts = (("success", success_gain), ("actions per solved task", actions_saved))
    worse = [name for name, iv in parts if iv.below_zero]
    if worse:
        return Verdict.CLEARLY_WORSE, f"{' and '.join(worse)}: interval wholly below 0"
    short = [f"{name} ({iv.n} runs)" if iv.n < 2 else name for name, iv in parts
             if not iv.above_zero]
    if short:
        return Verdict.NOT_CLEARLY_BETTER, f"{' and '.join(short)}: interval not wholly above 0"
    return Verdict.CLEARLY_BETTER, "success and actions per solved task: both wholly above 0"


@dataclass(frozen=True, slots=True)
class ProofSummary:
    """Intervals over the runs' figures (each side, and the per-run differences)."""

    runs: int
    success_on: Interval
    success_off: Interval
    success_gain: Interval  # on - off, per run
    actions_per_solve_on: Interval
    actions_per_solve_off: Interval
    actions_saved: Interval  # off - on, per run
    actions_to_solve_on: Interval  # solved tasks only
    actions_to_solve_off: Interval
    paired: Interval  # per run: mean of off - on over the tasks both solved
    paired_tasks: int  # over all runs
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.__slots__}
        for k, v in out.items():
            if isinstance(v, Interval):
                out[k] = v.to_dict()
        out["verdict"] = str(self.verdict)
        return out


def summarize_runs(figures: Sequence[RunFigures]) -> ProofSummary:
    """Student-t 95% intervals over the runs, and the verdict."""
    gain = Interval.over([f.success_gain for f in figures])
    saved = Interval.over([f.actions_saved for f in figures])
    judged, reason = verdict(gain, saved)
    return ProofSummary(
        runs=len(figures),
        success_on=Interval.over([f.on.success_rate for f in figures]),
        success_off=Interval.over([f.off.success_rate for f in figures]),
        success_gain=gain,
        actions_per_solve_on=Interval.over([f.on.actions_per_solve for f in figures]),
        actions_per_solve_off=Interval.over([f.off.actions_per_solve for f in figures]),
        actions_saved=saved,
        actions_to_solve_on=Interval.over([f.on.actions_to_solve for f in figures]),
        actions_to_solve_off=Interval.over([f.off.actions_to_solve for f in figures]),
        paired=Interval.over([f.fewer_actions_on for f in figures]),
        paired_tasks=sum(f.paired_tasks for f in figures),
        verdict=judged, reason=reason,
    )


@dataclass(slots=True)
class LearningProof:
    """Independent learning runs of one scenario, and their summary."""

    scenario: str
    config: LearningRunConfig
    runs: list[LearningReport] = field(default_factory=list)
    wall_seconds: float = 0.0

    def figures(self) -> list[RunFigures]:
        return [r.figures() for r in self.runs]

    def summary(self) -> ProofSummary:
        return summarize_runs(self.figures())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: a figure that does not exist (NaN) is ``None``."""
        data = {"format_version": 2, "kind": "learning-proof", "scenario": self.scenario,
                "config": self.config.to_dict(), "summary": self.summary().to_dict(),
                "runs": [r.to_dict() for r in self.runs], "wall_seconds": self.wall_seconds}
        return {k: _finite(v) for k, v in data.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


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
    run: int = 0,
    progress: Callable[[str, int, SessionPoint], None] | None = None,
    signal: HiddenSignal | None = None,
) -> LearningReport:
    """Run ``sessions`` sessions with learning on, then off, on the same tasks.

    ``run`` picks the independent run: its task-seed block, worker seed and
    search seed (see :class:`LearningRunConfig`). ``signal``: both sides are
    told its outcomes, the figures count the environment's (module docstring).
    """
    from swarmlearn.session import run_session

    cfg = config or LearningRunConfig()
    check_range("run", run, lo=0)
    _check_workers(scenario)
    _check_signal(cfg, signal)
    measured = _measured(signal)
    sc = scenario.override(workers={"policy": cfg.strategy})
    group = f"learning-{int(time.time() * 1000)}-r{run}"
    key = f"{sc.label}#{group}"
    analyzer = OfflineAnalyzer(store, AnalyzerConfig(trials=cfg.trials, seed=run))
    report = LearningReport(sc.label, cfg, run=run, first_seed=cfg.seed + run * cfg.block,
                            worker_seed=sc.seeds.workers + run)
    t0 = time.perf_counter()
    model: OfflineModel | None = None
    model_version: int | None = None
    on_sessions: list[int] = []
    history: list[EpisodeEnded] = []
    for i in range(cfg.sessions):
        stats, model = load_state(store, key)  # the previous session's snapshot, via the store
        policies = policies_from(stats, model)
        result = run_session(sc, store=store, seeds=_seeds(report, i),
                             worker_seed=report.worker_seed, group=group, kind="learning-on",
                             policies=policies, judge=signal)
        on_sessions.append(result.session)
        history.extend(result.episodes)
        if cfg.analyze_every and (i + 1) % cfg.analyze_every == 0 and i + 1 < cfg.sessions:
            model = analyzer.analyze(sc, stats=policies.state.stats, sessions=on_sessions,
                                     previous=model)
            model.scenario = key
            model_version = analyzer.save(model, sessions=on_sessions,
                                          reason=f"learning run {run}, after session {i + 1}")
        save_state(store, key, policies.state.stats, model, history, on_sessions)
        point = _point(i, result.session, measured(result.episodes))
        point.model_version = model_version
        report.on.append(point)
        if progress is not None:
            progress("on", i, point)
    report.model = model
    for i in range(cfg.sessions):
        policies = LearningPolicies(cfg.strategy, LearningState())
        result = run_session(sc, store=store, seeds=_seeds(report, i),
                             worker_seed=report.worker_seed, group=group, kind="learning-off",
                             policies=policies, judge=signal)
        point = _point(i, result.session, measured(result.episodes))
        report.off.append(point)
        if progress is not None:
            progress("off", i, point)
    report.wall_seconds = time.perf_counter() - t0
    return report


def run_proof(
    scenario: Scenario,
    store: Store | None,
    config: LearningRunConfig | None = None,
    *,
    progress: Callable[[int, str, int, SessionPoint], None] | None = None,
    signal: HiddenSignal | None = None,
) -> LearningProof:
    """``config.runs`` independent learning runs, one after the other.

    With ``store=None`` nothing is written anywhere: each run keeps its
    sessions, snapshots and offline models in its own in-memory store,
    dropped when the run ends.
    """
    cfg = config or LearningRunConfig()
    _check_workers(scenario)
    proof = LearningProof(scenario.label, cfg)
    t0 = time.perf_counter()
    for r in range(cfg.runs):
        tick = None if progress is None else partial(progress, r)
        with _run_store(store) as st:
            proof.runs.append(run_learning(scenario, st, cfg, run=r, progress=tick,
                                           signal=signal))
    proof.wall_seconds = time.perf_counter() - t0
    return proof


@contextmanager
def _run_store(store: Store | None) -> Iterator[Store]:
    if store is not None:
        yield store
        return
    memory = SqlStore("sqlite://")
    try:
        yield memory
    finally:
        memory.close()


def _check_workers(scenario: Scenario) -> None:
    kind = scenario.workers.kind
    if kind is not WorkerKind.RULE:
        raise ConfigError(f"learning runs need rule workers (their selection strategy is what "
                          f"learns), got workers.kind = {kind.value}", field="workers.kind",
                          value=kind.value)


def _check_signal(cfg: LearningRunConfig, signal: HiddenSignal | None) -> None:
    if signal is not None and cfg.analyze_every and cfg.trials:
        raise ConfigError(f"trials: a hidden signal needs trials = 0 (the offline search scores "
                          f"its rollouts by the environment's outcome, which is hidden), got "
                          f"{cfg.trials}", field="trials", value=cfg.trials)


def _measured(signal: HiddenSignal | None) -> Callable[[Sequence[EpisodeEnded]],
                                                       Sequence[EpisodeEnded]]:
    """The episodes with the outcome the figures count: the environment's."""
    if signal is None:
        return lambda episodes: episodes
    return lambda episodes: [e._replace(outcome=signal.truth(e)) for e in episodes]


def _seeds(report: LearningReport, session: int) -> list[int]:
    n = report.config.episodes
    start = report.first_seed + session * n
    return list(range(start, start + n))
