"""What each trainer and evaluation sends to MLflow (through :func:`.tracking.track`).

The trainers stay as they are: each already reports progress through a
callback (``on_progress``, ``on_eval``, ``on_step``, ``on_episode``), and
the functions here turn those records into batched metrics, plus the
params, artifacts and tags linking the run to the store (session ids,
artifact ids) and to its files (run directory, adapter, report).

Nothing here imports MLflow: with tracking off the run is a do-nothing run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlearn.ops.tracking import TrackedRun, Tracker, TrackingConfig, current_run, track

if TYPE_CHECKING:
    from swarmlearn.core.events import EpisodeEnded
    from swarmlearn.rl._loop import Progress
    from swarmlearn.rl._records import EvalReport
    from swarmlearn.rl._run import Trainer

__all__ = [
    "DqnTracking",
    "LevelRunTracker",
    "episode_logger",
    "log_version",
    "track_dqn",
    "tracked_command",
]


@dataclass(slots=True)
class DqnTracking:
    """The callbacks ``Trainer.run`` takes, feeding one MLflow run.

    Progress is logged at most every ``every`` seconds (the loop calls twice a
    second; each value costs MLflow's store a fraction of a millisecond): the
    full per-episode curves go in one batch at the end.
    """

    run: TrackedRun
    trainer: Trainer
    every: float = 2.0
    _next: float = 0.0

    def on_progress(self, p: Progress) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        metrics = {"train/mean_return": p.mean_return, "train/steps_per_second": p.steps_per_sec}
        metrics.update({f"train/{k}": v for k, v in self.trainer.agent.metrics().items()})
        self.run.log_metrics(metrics, p.steps)

    def on_eval(self, report: EvalReport) -> None:
        self.run.log_metrics({"eval/mean_return": report.mean_reward,
                              "eval/std_return": report.std_reward,
                              "eval/mean_length": report.mean_length}, report.step)

    def finish(self) -> None:
        """The per-episode curves (one batch) and the run's files."""
        from swarmlearn.rl._rundir import EpisodeLog

        rd = self.trainer.run_dir
        episodes = rd.read_episodes(EpisodeLog.TRAIN)
        self.run.log_series("episode/return", [(e.step, e.total_reward) for e in episodes])
        self.run.log_series("episode/length", [(e.step, float(e.length)) for e in episodes])
        for key in ("loss", "q_mean", "epsilon"):
            self.run.log_series(f"episode/{key}", [(e.step, e.extras[key]) for e in episodes
                                                   if key in e.extras])
        for name in ("config.json", "metadata.json", "learning_curve.png",
                     "train_episodes.jsonl", "eval_episodes.jsonl"):
            if (rd.path / name).exists():
                self.run.log_artifact(rd.path / name)
        best = rd.checkpoints_dir / "best"
        if best.is_dir():
            self.run.log_artifact(best, "checkpoints/best")


RUN_START_WAIT = 3.0
"""Seconds a tracked training waits at most for MLflow to have its run (none in an outage)."""


@contextlib.contextmanager
def track_dqn(trainer: Trainer, name: str = "rl.train", *,
              tracker: Tracker | None = None) -> Iterator[DqnTracking]:
    """An MLflow run around a DQN training (``swarmlearn rl train`` / ``resume``)."""
    from swarmlearn._config import to_mapping

    config = trainer.config
    tags = {"swarmlearn.kind": "dqn", "swarmlearn.env_id": config.env_id,
            "swarmlearn.run_dir": str(trainer.run_dir.path)}
    with track(name, params=to_mapping(config), tags=tags, tracker=tracker) as run:
        run.wait_sent(RUN_START_WAIT)  # the run and its params: before training, not during
        tracking = DqnTracking(run, trainer)
        yield tracking
        tracking.finish()


def episode_logger(run: TrackedRun, prefix: str = "") -> Callable[[EpisodeEnded], None]:
    """An ``on_episode`` callback: each finished task's outcome, actions and ticks, by
    the number of tasks seen so far (and the session ids, as a tag at the end)."""
    seen = [0]
    sessions: set[int] = set()

    def observe(e: EpisodeEnded) -> None:
        seen[0] += 1
        run.log_metrics({f"{prefix}episode/success": float(e.outcome.kind.value == "success"),
                         f"{prefix}episode/value": e.outcome.value,
                         f"{prefix}episode/actions": float(e.actions),
                         f"{prefix}episode/ticks": float(e.ticks),
                         f"{prefix}episode/seconds": e.duration}, seen[0])
        if e.session not in sessions:
            sessions.add(e.session)
            run.set_tags({"swarmlearn.sessions": ",".join(map(str, sorted(sessions)))})
    return observe


@contextlib.contextmanager
def tracked_command(name: str, *, params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None,
                    artifacts: Sequence[Path | None] = ()) -> Iterator[TrackedRun]:
    """A tracked run around any command; ``artifacts`` (files it writes) are logged
    at the end if they exist then."""
    with track(name, params=params, tags=tags) as run:
        yield run
        for path in artifacts:
            if path is not None and Path(path).exists():
                run.log_artifact(path)


def log_version(run: TrackedRun, version: Any) -> None:
    """A registered lifecycle version on the run: its ids as tags (the link to the store
    and to the registry mirror), its lineage config as params and metrics as metrics, and
    its directory (an adapter, a skill document) as artifacts when it has one."""
    if version.id in run.versions:
        return
    run.versions.add(version.id)
    lineage = version.lineage
    run.set_tags({"swarmlearn.artifact_id": version.id, "swarmlearn.kind": version.kind,
                  "swarmlearn.scope": version.scope, "swarmlearn.version": version.version,
                  "swarmlearn.artifact_ids": ",".join(map(str, sorted(run.versions)))})
    # params never change in MLflow: each version's lineage under its own name
    run.log_params({f"{version.kind}.v{version.version}": dict(lineage.config)})
    run.log_metrics({f"lineage/{version.kind}/{k}": float(v)
                     for k, v in lineage.metrics.items()
                     if isinstance(v, int | float) and not isinstance(v, bool)},
                    version.version)
    directory = version.meta.get("directory")
    if isinstance(directory, str) and Path(directory).exists():
        run.log_artifact(directory, "artifact")


class LevelRunTracker:
    """A lifecycle observer that makes an MLflow run of each daemon level run (and
    links every other produced version to a run, see :meth:`_produced`).

    The daemon notes ``run-start``, then the lifecycle records ``produce``,
    ``evaluate``, ``promote`` / ``reject`` and the daemon ``run-done`` (or
    ``run-failed``): the run gets the level's trigger as params, the produced
    version's ids and lineage, the gate's numbers and the run's seconds, and
    ends FINISHED or FAILED. The MLflow client is made at the first run.
    """

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self._tracker: Tracker | None = None
        self._runs: dict[tuple[str, str], TrackedRun] = {}

    def __call__(self, life: Any, record: Any) -> None:
        key = (record.kind, record.scope)
        data = dict(record.data)
        if record.step == "run-start":
            if self._tracker is None:
                self._tracker = Tracker(self.config)
            old = self._runs.pop(key, None)
            if old is not None:
                old.end("KILLED")
            self._runs[key] = self._tracker.start_run(
                f"daemon {record.kind}/{record.scope}", params={"trigger": data},
                tags={"swarmlearn.command": "daemon", "swarmlearn.kind": record.kind,
                      "swarmlearn.scope": record.scope, "swarmlearn.level": data.get("level")})
            return
        run = self._runs.get(key)
        if run is None:
            if record.step == "produce" and record.artifact_id:
                self._produced(life, record)
            return
        if record.step == "produce" and record.artifact_id:
            log_version(run, life.get(int(data["version"])))
        elif record.step in ("promote", "reject") and record.artifact_id:
            gate = life.get(int(data["version"])).gate or {}
            run.log_metrics({f"gate/{k}": float(v) for k, v in gate.items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
            run.set_tags({"swarmlearn.decision": record.step})
        elif record.step in ("run-done", "run-failed"):
            run.log_metrics({k: float(v) for k, v in data.items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
            if record.step == "run-failed":
                run.set_tags({"swarmlearn.failure": record.reason[:5000]})
            run.end("FINISHED" if record.step == "run-done" else "FAILED")
            del self._runs[key]

    def _produced(self, life: Any, record: Any) -> None:
        """A version produced outside a daemon run: on the tracked command's run when
        there is one (``lora train``), else on a run of its own (``learn analyze``,
        ``skills publish``, snapshots and profiles saved by a session)."""
        version = life.get(int(record.data["version"]))
        current = current_run()
        if current is not None:
            log_version(current, version)
            return
        if self._tracker is None:
            self._tracker = Tracker(self.config)
        run = self._tracker.start_run(f"produce {record.kind}/{record.scope}",
                                      tags={"swarmlearn.command": "produce",
                                            "swarmlearn.reason": record.reason[:5000]})
        log_version(run, version)
        run.end()

    def close(self) -> None:
        for run in self._runs.values():
            run.end("KILLED")
        self._runs.clear()
        if self._tracker is not None:
            self._tracker.close()


def skill_logger(run: TrackedRun) -> Callable[[Any], None]:
    """An ``on_step`` callback for the skill optimizer: each step's numbers (the rollout,
    the edits proposed / merged / applied, validation), calls and tokens so far."""
    def observe(skill_run: Any) -> None:
        h = skill_run.history[-1] if skill_run.history else {}
        metrics: dict[str, float] = {"calls": float(skill_run.usage.calls),
                                     "tokens": float(skill_run.usage.tokens)}
        for key, value in h.items():
            if isinstance(value, Mapping):
                metrics.update({f"{key}/{k}": float(v) for k, v in value.items()
                                if isinstance(v, int | float) and not isinstance(v, bool)})
            elif isinstance(value, list):
                metrics[f"{key}/count"] = float(len(value))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                metrics[key] = float(value)
        run.log_metrics(metrics, skill_run.step)
    return observe


def finish_skill(run: TrackedRun, skill_run: Any, run_dir: Path, report: Path | None) -> None:
    """The skill run's end: status, test numbers, the best document, state and report."""
    run.set_tags({"swarmlearn.status": skill_run.status, "swarmlearn.run_dir": str(run_dir),
                  "swarmlearn.best_step": skill_run.best_step})
    test = skill_run.test or {}
    for side in ("initial", "best"):
        if isinstance(test.get(side), Mapping):
            run.log_metrics({f"test/{side}_{k}": float(v) for k, v in test[side].items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
    run.log_text(skill_run.best, "skill/best.md")
    for path in (run_dir / "state.json", report):
        if path is not None and Path(path).exists():
            run.log_artifact(path)
