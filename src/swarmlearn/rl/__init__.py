"""swarmlearn.rl: DQN agents driven by a loop-agnostic TrainingSession.

Quick start::

    from swarmlearn.rl import RunConfig, Trainer
    Trainer.start(RunConfig(env_id="CartPole-v1", steps=50_000)).run()

Parts, each usable alone: :class:`DQN` (a :class:`LearningAgent`),
:class:`TrainingSession` (fed by any loop), :class:`RunDir` (the files of a
run), :class:`EnvPool` + :class:`GymLoop` (a gymnasium loop), the replay
buffers and the pure math in ``swarmlearn.rl._math``.  gymnasium and
safetensors come with the ``rl`` extra and are imported only when used.
"""

from typing import TYPE_CHECKING, Any

from swarmlearn.rl._cli import rl_app
from swarmlearn.rl._dqn import DQN, DQNConfig
from swarmlearn.rl._envs import EnvPool, FinishedEpisode, VectorStep, make_env
from swarmlearn.rl._loop import GymLoop, LoopConfig, LoopResult, Progress, evaluate
from swarmlearn.rl._mlp import MLPQNet, MLPSpec
from swarmlearn.rl._protocols import (
    ActMode,
    EpisodeStatus,
    Experience,
    LearningAgent,
    Stateful,
    StateTree,
)
from swarmlearn.rl._records import EpisodeRecord, EvalReport
from swarmlearn.rl._replay import (
    NStepFolder,
    PrioritizedSampler,
    ReplayBatch,
    ReplayBuffer,
    Transitions,
)
from swarmlearn.rl._run import RunConfig, Trainer, evaluate_run
from swarmlearn.rl._rundir import EpisodeLog, RunDir, RunMetadata
from swarmlearn.rl._session import SessionConfig, TrainingSession
from swarmlearn.rl._stats import RollingStats
from swarmlearn.rl._sumtree import SumTree
from swarmlearn.rl._swarm_codec import (
    ActionLayout,
    ObservationEncoder,
    SwarmCodec,
    SwarmEnvConfig,
    kind_of_env_id,
    swarm_env_id,
)
from swarmlearn.rl._worker import DQNWorker, GreedyPolicy, build_rl_workers

if TYPE_CHECKING:
    from swarmlearn.rl._swarm_env import SwarmGymEnv, register_swarm_envs

_NEEDS_GYMNASIUM = {"SwarmGymEnv", "register_swarm_envs"}


def __getattr__(name: str) -> Any:
    """The gymnasium-based names, imported on first use."""
    if name in _NEEDS_GYMNASIUM:
        from swarmlearn.rl import _swarm_env

        return getattr(_swarm_env, name)
    raise AttributeError(f"module 'swarmlearn.rl' has no attribute {name!r}")


__all__ = [
    "DQN",
    "ActMode",
    "ActionLayout",
    "DQNConfig",
    "DQNWorker",
    "EnvPool",
    "EpisodeLog",
    "EpisodeRecord",
    "EpisodeStatus",
    "EvalReport",
    "Experience",
    "FinishedEpisode",
    "GreedyPolicy",
    "GymLoop",
    "LearningAgent",
    "LoopConfig",
    "LoopResult",
    "MLPQNet",
    "MLPSpec",
    "NStepFolder",
    "ObservationEncoder",
    "PrioritizedSampler",
    "Progress",
    "ReplayBatch",
    "ReplayBuffer",
    "RollingStats",
    "RunConfig",
    "RunDir",
    "RunMetadata",
    "SessionConfig",
    "StateTree",
    "Stateful",
    "SumTree",
    "SwarmCodec",
    "SwarmEnvConfig",
    "SwarmGymEnv",
    "Trainer",
    "TrainingSession",
    "Transitions",
    "VectorStep",
    "build_rl_workers",
    "evaluate",
    "evaluate_run",
    "kind_of_env_id",
    "make_env",
    "register_swarm_envs",
    "rl_app",
    "swarm_env_id",
]
