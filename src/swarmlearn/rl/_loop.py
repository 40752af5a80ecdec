"""The gymnasium training loop: one of the loops that can feed a TrainingSession.

Per vector step: act (explore) -> step the pool -> ``session.observe`` ->
report finished episodes -> evaluate when due (greedy, on a separate pool)
-> checkpoint when due.  Evaluation and checkpoints happen between steps,
where the loop's whole state is in the session's checkpoint (the pool is
registered with the session), so a resumed run continues exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from swarmlearn._config import check_range
from swarmlearn.rl._envs import Bool, EnvPool
from swarmlearn.rl._protocols import ActMode, Experience
from swarmlearn.rl._records import EvalReport
from swarmlearn.rl._session import TrainingSession

__all__ = ["GymLoop", "LoopConfig", "LoopResult", "Progress", "evaluate"]

F32 = npt.NDArray[np.float32]


@dataclass(kw_only=True, frozen=True, slots=True)
class LoopConfig:
    """Evaluation schedule of the loop."""

    eval_every: int = 10_000
    """Environment steps between evaluations (0: never)."""
    eval_episodes: int = 10
    eval_seed: int = 1_000_000
    """Evaluation episode k of round r is seeded ``eval_seed + r * eval_episodes + k``."""
    progress_interval: float = 0.5
    """Seconds between ``on_progress`` calls."""

    def __post_init__(self) -> None:
        check_range("eval_every", self.eval_every, lo=0)
        check_range("eval_episodes", self.eval_episodes, lo=1)
        check_range("progress_interval", self.progress_interval, lo=0.0)


class Progress(NamedTuple):
    steps: int
    max_steps: int
    episodes: int
    mean_return: float
    """Rolling mean of the training episodes' returns."""
    steps_per_sec: float
    last_eval: float | None


@dataclass(slots=True)
class LoopResult:
    """What a :meth:`GymLoop.run` call did; wall time split into training and evaluation."""

    steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    evaluations: list[EvalReport] = field(default_factory=list)
    stopped: bool = False
    """True when ``should_stop`` ended the run early."""


def evaluate(
    session: TrainingSession, eval_envs: EnvPool, episodes: int, *, seed: int
) -> EvalReport:
    """Play ``episodes`` greedy episodes, record them in the session, keep the best checkpoint."""
    agent = session.agent
    results = eval_envs.run_episodes(
        lambda obs, mask: agent.act(obs, ActMode.EXPLOIT, mask), episodes, seed=seed
    )
    for ep in results:
        session.on_eval_episode(ep.total_reward, ep.length, ep.status)
    report = session.eval_report(len(results))
    session.maybe_save_best(report.mean_reward)
    return report


class GymLoop:
    """Drives ``envs`` with ``session.agent`` until the session is done."""

    def __init__(
        self,
        session: TrainingSession,
        envs: EnvPool,
        eval_envs: EnvPool | None = None,
        config: LoopConfig | None = None,
    ) -> None:
        self.session = session
        self.envs = envs
        self.eval_envs = eval_envs
        self.config = config or LoopConfig()
        session.register("envs", envs)
        self._last_eval: float | None = None

    def run(
        self,
        *,
        until: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_eval: Callable[[EvalReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> LoopResult:
        """Train until the session is done (or ``until`` steps, or ``should_stop()``).

        ``should_stop`` is asked between steps, where everything is consistent,
        so a run stopped that way can be checkpointed and resumed exactly.
        Returns timings and evaluations.
        """
        session, envs = self.session, self.envs
        result = LoopResult()
        start = time.perf_counter()
        next_progress = 0.0
        if not envs.started:
            envs.reset()
            for i in range(envs.n):
                session.on_episode_start(i)
        obs = envs.obs.copy()
        mask = None if envs.mask is None else envs.mask.copy()
        first_step = session.steps
        while not session.is_done and (until is None or session.steps < until):
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            before = session.steps
            obs, mask = self._step(obs, mask)
            if self.eval_envs is not None and self._eval_due(before, session.steps):
                t0 = time.perf_counter()
                report = self._evaluate(self.eval_envs)
                result.eval_seconds += time.perf_counter() - t0
                result.evaluations.append(report)
                if on_eval is not None:
                    on_eval(report)
            if session.checkpoint_due:
                session.checkpoint()
            if on_progress is not None and (now := time.perf_counter()) >= next_progress:
                next_progress = now + self.config.progress_interval
                on_progress(self.progress())
        result.steps = session.steps - first_step
        result.train_seconds = time.perf_counter() - start - result.eval_seconds
        if on_progress is not None:
            on_progress(self.progress())
        return result

    def _step(self, obs: F32, mask: Bool | None) -> tuple[F32, Bool | None]:
        """Act, step the pool, feed the session; returns what to act on next."""
        session = self.session
        actions = session.agent.act(obs, ActMode.EXPLORE, mask)
        step = self.envs.step(actions)
        session.observe(
            Experience(
                obs,
                actions,
                step.reward,
                step.next_obs,
                step.terminated,
                step.truncated,
                step.next_mask,
            )
        )
        for ep in step.finished:
            session.on_episode(ep.total_reward, ep.length, ep.status)
            session.on_episode_start(ep.env_index)
        return step.obs, step.mask

    def _eval_due(self, before: int, after: int) -> bool:
        every = self.config.eval_every
        return every > 0 and after // every > before // every

    def _evaluate(self, eval_envs: EnvPool) -> EvalReport:
        c = self.config
        rnd = self.session.steps // c.eval_every
        report = evaluate(
            self.session, eval_envs, c.eval_episodes, seed=c.eval_seed + rnd * c.eval_episodes
        )
        self._last_eval = report.mean_reward
        return report

    def progress(self) -> Progress:
        s = self.session
        return Progress(
            steps=s.steps,
            max_steps=s.config.max_steps,
            episodes=s.episodes,
            mean_return=s.train_stats.rolling_mean,
            steps_per_sec=s.steps_per_sec,
            last_eval=self._last_eval,
        )
