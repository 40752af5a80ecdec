"""Train, resume and evaluate a DQN on a gymnasium environment, in a run directory.

The two-line happy path::

    trainer = Trainer.start(RunConfig(env_id="CartPole-v1", steps=50_000))
    trainer.run()

:class:`Trainer` only assembles the parts (environments, agent, session,
loop, run directory); each of them is usable on its own.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn import __version__
from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.errors import ConfigError
from swarmlearn.rl._checkpoint import write_json_atomic
from swarmlearn.rl._dqn import DQN, DQNConfig
from swarmlearn.rl._envs import EnvPool, make_env
from swarmlearn.rl._loop import GymLoop, LoopConfig, LoopResult, Progress, evaluate
from swarmlearn.rl._plot import plot_learning_curve
from swarmlearn.rl._records import EvalReport
from swarmlearn.rl._rundir import EpisodeLog, RunDir
from swarmlearn.rl._session import SessionConfig, TrainingSession

__all__ = ["RunConfig", "Trainer", "evaluate_run"]

logger = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_000


@dataclass(kw_only=True, frozen=True, slots=True)
class RunConfig:
    """Everything a training run needs; saved as the run's config.json."""

    env_id: str
    steps: int
    n_envs: int = 1
    seed: int = 0
    """Seeds the environments; the agent is seeded by ``dqn.seed``."""
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 10_000
    keep_checkpoints: int = 3
    name: str = ""
    """Run name (directory); default: the environment id."""
    version: str = "v1"
    runs_dir: str = "runs"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dqn: DQNConfig = field(default_factory=DQNConfig)

    def __post_init__(self) -> None:
        if not self.env_id:
            raise ConfigError("env_id: must not be empty", field="env_id", value=self.env_id)
        check_range("steps", self.steps, lo=1)
        check_range("n_envs", self.n_envs, lo=1)
        check_range("eval_every", self.eval_every, lo=0)
        check_range("eval_episodes", self.eval_episodes, lo=1)
        check_range("checkpoint_every", self.checkpoint_every, lo=0)
        check_range("keep_checkpoints", self.keep_checkpoints, lo=1)

    @property
    def run_name(self) -> str:
        return self.name or re.sub(r"[^A-Za-z0-9._\-]", "_", self.env_id).lstrip(".")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunConfig:
        return from_mapping(cls, data)


def _build_agent(config: RunConfig, envs: EnvPool) -> DQN:
    return DQN(
        config.dqn,
        obs_dim=envs.obs_dim,
        n_actions=envs.n_actions,
        total_steps=config.steps,
        n_envs=config.n_envs,
    )


class Trainer:
    """A DQN training run on a gymnasium environment, kept in a :class:`RunDir`."""

    def __init__(self, config: RunConfig, run_dir: RunDir) -> None:
        self.config = config
        self.run_dir = run_dir
        self.envs = EnvPool.make(
            config.env_id, config.n_envs, seed=config.seed, **config.env_kwargs
        )
        self.eval_envs = EnvPool.make(
            config.env_id,
            config.eval_episodes,
            seed=config.seed + EVAL_SEED_OFFSET,
            **config.env_kwargs,
        )
        self.agent = _build_agent(config, self.envs)
        session_config = SessionConfig(
            max_steps=config.steps,
            checkpoint_every=config.checkpoint_every,
            keep_checkpoints=config.keep_checkpoints,
        )
        self.session = TrainingSession(self.agent, session_config, run_dir)
        loop_config = LoopConfig(
            eval_every=config.eval_every,
            eval_episodes=config.eval_episodes,
            eval_seed=config.seed + EVAL_SEED_OFFSET,
        )
        self.loop = GymLoop(self.session, self.envs, self.eval_envs, loop_config)

    @classmethod
    def start(cls, config: RunConfig) -> Trainer:
        """A new run directory under ``config.runs_dir`` and a trainer for it."""
        make_env(config.env_id, **config.env_kwargs).close()  # a bad env id leaves no run behind
        run_dir = RunDir.create(
            config.runs_dir,
            config.run_name,
            config.version,
            config=to_mapping(config),
            info={"env_id": config.env_id, "algo": "dqn", "swarmlearn": __version__},
        )
        return cls(config, run_dir)

    @classmethod
    def resume(cls, path: Path | str, *, steps: int | None = None) -> Trainer:
        """Continue the run at ``path`` from its latest checkpoint (to ``steps`` if given)."""
        run_dir = RunDir.open(path)
        config = RunConfig.from_mapping(run_dir.read_config())
        if steps is not None and steps != config.steps:
            config = dataclasses.replace(config, steps=steps)
            write_json_atomic(run_dir.path / "config.json", to_mapping(config))
            logger.warning("run extended to %d steps: the epsilon schedule stretches too", steps)
        trainer = cls(config, run_dir)
        trainer.session.restore()
        return trainer

    def run(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_eval: Callable[[EvalReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> LoopResult:
        """Train to the end (or until ``should_stop()``), checkpoint, write the learning curve.

        Stopped through ``should_stop`` the run is checkpointed where it stands
        (status ``interrupted``; ``resume`` continues exactly).  An exception
        (KeyboardInterrupt included) can land mid-step, so then no checkpoint
        is written: the run keeps its last periodic one, and status ``failed``
        or ``interrupted``.
        """
        try:
            result = self.loop.run(
                on_progress=on_progress, on_eval=on_eval, should_stop=should_stop
            )
        except KeyboardInterrupt:
            self.run_dir.update(status="interrupted")
            raise
        except BaseException:
            self.run_dir.update(status="failed")
            raise
        self.session.close(status="interrupted" if result.stopped else "finished")
        self.plot()
        return result

    def plot(self) -> Path:
        """Write ``learning_curve.png`` into the run directory."""
        return plot_learning_curve(
            self.run_dir.read_episodes(EpisodeLog.TRAIN),
            self.run_dir.read_episodes(EpisodeLog.EVAL),
            self.run_dir.path / "learning_curve.png",
            title=f"DQN on {self.config.env_id}",
        )

    def close(self) -> None:
        self.envs.close()
        self.eval_envs.close()


def evaluate_run(
    path: Path | str, *, episodes: int = 10, checkpoint: str = "best", seed: int | None = None
) -> EvalReport:
    """Greedy evaluation of a run's ``best`` or ``latest`` checkpoint on fresh environments.

    Writes ``eval_<checkpoint>.json`` into the run directory.
    """
    if checkpoint not in {"best", "latest"}:
        raise ConfigError(
            f"checkpoint: expected 'best' or 'latest', got {checkpoint!r}",
            field="checkpoint",
            value=checkpoint,
        )
    run_dir = RunDir.open(path)
    config = RunConfig.from_mapping(run_dir.read_config())
    state = run_dir.load_best() if checkpoint == "best" else run_dir.load_checkpoint()
    envs = EnvPool.make(config.env_id, episodes, seed=0, **config.env_kwargs)
    try:
        agent = _build_agent(config, envs)
        agent.load_state_dict(state["agent"])
        session = TrainingSession(agent, SessionConfig(max_steps=config.steps))
        session.steps = agent.steps
        base = config.seed + 2 * EVAL_SEED_OFFSET if seed is None else seed
        report = evaluate(session, envs, episodes, seed=base)
    finally:
        envs.close()
    write_json_atomic(run_dir.path / f"eval_{checkpoint}.json", report.to_dict())
    return report
