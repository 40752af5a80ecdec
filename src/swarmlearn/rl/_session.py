"""TrainingSession: the bookkeeping of a training run, fed by whatever loop drives it.

The session owns no loop.  A loop (the gymnasium loop in :mod:`._loop`, the
swarm orchestrator, a test) tells it what happened::

    session.observe(experience)             # every vector step -> agent.observe
    session.on_episode(total, steps, status, extras)
    session.on_episode_start(env_index)
    session.on_eval_episode(total, steps, status)
    session.maybe_save_best(mean_eval_reward)
    if session.checkpoint_due: session.checkpoint()
    while not session.is_done: ...

and the session keeps counts and rolling statistics, writes the episode logs
and checkpoints of the run directory, and restores all of it — the agent,
itself, and any registered :class:`Stateful` part such as the loop's
environments — from a checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range
from swarmlearn.errors import ArtifactError, TrainingError
from swarmlearn.rl._protocols import EpisodeStatus, Experience, LearningAgent, Stateful, StateTree
from swarmlearn.rl._records import EpisodeRecord, EvalReport
from swarmlearn.rl._rundir import EpisodeLog, RunDir
from swarmlearn.rl._stats import RollingStats

__all__ = ["SessionConfig", "TrainingSession"]

logger = logging.getLogger(__name__)

SESSION_FORMAT = 1


@dataclass(kw_only=True, frozen=True, slots=True)
class SessionConfig:
    """How long to train and how to keep the run."""

    max_steps: int
    checkpoint_every: int = 10_000
    """Environment steps between checkpoints (0: only when the session closes)."""
    keep_checkpoints: int = 3
    stats_window: int = 100
    eval_history: int = 1000
    """Evaluation episodes kept in memory for :meth:`TrainingSession.eval_report`."""

    def __post_init__(self) -> None:
        check_range("max_steps", self.max_steps, lo=1)
        check_range("checkpoint_every", self.checkpoint_every, lo=0)
        check_range("keep_checkpoints", self.keep_checkpoints, lo=1)
        check_range("stats_window", self.stats_window, lo=1)
        check_range("eval_history", self.eval_history, lo=1)


class TrainingSession:
    """Counts, statistics, logs, checkpoints and the best score of one training run."""

    def __init__(
        self,
        agent: LearningAgent,
        config: SessionConfig,
        run_dir: RunDir | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.config = config
        self.run_dir = run_dir
        self._clock = clock
        self._parts: dict[str, Stateful] = {}
        self.steps = 0
        self.episodes = 0
        self.eval_episodes = 0
        self.train_stats = RollingStats(config.stats_window)
        self.eval_stats = RollingStats(config.stats_window)
        self._eval_records: deque[EpisodeRecord] = deque(maxlen=config.eval_history)
        self._last_checkpoint = 0
        self._best: float | None = None
        if run_dir is not None and (best := run_dir.best()) is not None:
            self._best = best[0]
        self._rate: deque[tuple[float, int]] = deque([(clock(), 0)], maxlen=32)

    def register(self, name: str, part: Stateful) -> None:
        """Checkpoint ``part`` (e.g. the loop's environments) with the agent, under ``name``."""
        if name in {"agent", "session"} or name in self._parts:
            raise ValueError(f"a part named {name!r} is already registered")
        self._parts[name] = part

    # ---- fed by the loop ----------------------------------------------------------------

    def observe(self, experience: Experience) -> None:
        """One vector step: the agent learns from it and the step count grows by ``n``."""
        self.agent.observe(experience)
        self.steps += experience.n
        now = self._clock()
        if now - self._rate[-1][0] >= 0.25:
            self._rate.append((now, self.steps))

    def on_episode_start(self, env_index: int = 0) -> None:
        self.agent.on_episode_start(env_index)

    def on_episode(
        self,
        total_reward: float,
        steps: int,
        status: EpisodeStatus,
        extras: Mapping[str, float] | None = None,
    ) -> EpisodeRecord:
        """A training episode ended; it is logged with the agent's metrics as extras."""
        merged = {**self.agent.metrics(), **(extras or {})}
        record = EpisodeRecord(
            index=self.episodes,
            step=self.steps,
            total_reward=total_reward,
            length=steps,
            status=status,
            extras=merged,
        )
        self.episodes += 1
        self.train_stats.add(total_reward)
        if self.run_dir is not None:
            self.run_dir.append_episode(EpisodeLog.TRAIN, record)
        return record

    def on_eval_episode(
        self,
        total_reward: float,
        steps: int,
        status: EpisodeStatus,
        extras: Mapping[str, float] | None = None,
    ) -> EpisodeRecord:
        """An evaluation episode (greedy, separate environment) ended."""
        record = EpisodeRecord(
            index=self.eval_episodes,
            step=self.steps,
            total_reward=total_reward,
            length=steps,
            status=status,
            extras=dict(extras or {}),
        )
        self.eval_episodes += 1
        self.eval_stats.add(total_reward)
        self._eval_records.append(record)
        if self.run_dir is not None:
            self.run_dir.append_episode(EpisodeLog.EVAL, record)
        return record

    # ---- questions ----------------------------------------------------------------------

    @property
    def is_done(self) -> bool:
        return self.steps >= self.config.max_steps

    @property
    def steps_per_sec(self) -> float:
        """Environment steps per second over the last few seconds (nan at the start)."""
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else math.nan

    @property
    def best_score(self) -> float | None:
        return self._best

    def eval_report(self, n: int) -> EvalReport:
        """Summary of the last ``n`` evaluation episodes; TrainingError when there are none."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not self._eval_records:
            raise TrainingError("no evaluation episodes recorded yet: nothing to report")
        records = list(self._eval_records)[-n:]
        return EvalReport.from_episodes(records, step=self.steps)

    # ---- best and checkpoints -----------------------------------------------------------

    def maybe_save_best(self, mean_reward: float) -> bool:
        """Save a best checkpoint if ``mean_reward`` beats every score so far (also on disk)."""
        if not math.isfinite(mean_reward):
            raise ValueError(f"mean_reward must be finite, got {mean_reward}")
        if self._best is not None and mean_reward <= self._best:
            return False
        self._best = mean_reward
        if self.run_dir is not None:
            self.run_dir.save_best(mean_reward, self.steps, self.state_dict())
            logger.info("new best %.3f at step %d", mean_reward, self.steps)
        return True

    @property
    def checkpoint_due(self) -> bool:
        every = self.config.checkpoint_every
        return (
            self.run_dir is not None
            and every > 0
            and self.steps // every > self._last_checkpoint // every
        )

    def checkpoint(self) -> Path:
        """Write a checkpoint now (TrainingError without a run directory)."""
        if self.run_dir is None:
            raise TrainingError("this session has no run directory to checkpoint into")
        path = self.run_dir.save_checkpoint(
            self.steps, self.state_dict(), keep=self.config.keep_checkpoints
        )
        self._last_checkpoint = self.steps
        self._sync_metadata()
        logger.info("checkpoint at step %d: %s", self.steps, path)
        return path

    def close(self, status: str = "finished") -> None:
        """Checkpoint (unless one was just written), record ``status``, close the logs."""
        if self.run_dir is None:
            return
        if self._last_checkpoint != self.steps or not self.run_dir.checkpoint_steps():
            self.checkpoint()
        self._sync_metadata(status=status)
        self.run_dir.close()

    def _sync_metadata(self, **extra: Any) -> None:
        if self.run_dir is None:
            return
        self.run_dir.update(
            steps=self.steps,
            train_episodes=self.episodes,
            eval_episodes=self.eval_episodes,
            **extra,
        )

    # ---- state --------------------------------------------------------------------------

    def state_dict(self) -> StateTree:
        return {
            "format_version": SESSION_FORMAT,
            "agent": self.agent.state_dict(),
            "session": {
                "steps": self.steps,
                "episodes": self.episodes,
                "eval_episodes": self.eval_episodes,
                "train_stats": self.train_stats.state_dict(),
                "eval_stats": self.eval_stats.state_dict(),
                "eval_records": [r.to_dict() for r in self._eval_records],
                "best": self._best,
            },
            "parts": {name: part.state_dict() for name, part in self._parts.items()},
        }

    def load_state_dict(self, state: StateTree) -> None:
        if state.get("format_version") != SESSION_FORMAT:
            raise ArtifactError(f"checkpoint format {state.get('format_version')!r} is unknown")
        missing = set(self._parts) - set(state["parts"])
        if missing:
            raise ArtifactError(f"checkpoint has no state for {sorted(missing)}")
        self.agent.load_state_dict(state["agent"])
        own = state["session"]
        self.steps = int(own["steps"])
        self.episodes = int(own["episodes"])
        self.eval_episodes = int(own["eval_episodes"])
        self.train_stats.load_state_dict(own["train_stats"])
        self.eval_stats.load_state_dict(own["eval_stats"])
        self._eval_records.clear()
        self._eval_records.extend(EpisodeRecord.from_dict(r) for r in own["eval_records"])
        if own["best"] is not None:
            self._best = max(float(own["best"]), self._best or -math.inf)
        for name, part in self._parts.items():
            part.load_state_dict(state["parts"][name])
        self._last_checkpoint = self.steps
        self._rate = deque([(self._clock(), self.steps)], maxlen=32)

    def restore(self, step: int | None = None) -> int:
        """Continue from the run directory's checkpoint at ``step`` (default: latest).

        Episode logs are cut back to the checkpoint's counts and later
        checkpoints are dropped, so the files match the restored state.
        Returns the restored step.
        """
        if self.run_dir is None:
            raise TrainingError("this session has no run directory to restore from")
        self.load_state_dict(self.run_dir.load_checkpoint(step))
        self.run_dir.truncate_episodes(EpisodeLog.TRAIN, self.episodes)
        self.run_dir.truncate_episodes(EpisodeLog.EVAL, self.eval_episodes)
        self.run_dir.drop_checkpoints_after(self.steps)
        self._sync_metadata(status="running")
        logger.info("restored %s at step %d", self.run_dir.path, self.steps)
        return self.steps
