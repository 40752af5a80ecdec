"""A trained DQN policy as a swarm worker (behind :class:`swarmlearn.core.workers.Worker`).

The worker sees what every worker sees — the :class:`Observation` and the
manager's guidance — encodes it exactly as :class:`SwarmGymEnv` did during
training (same :class:`ActionLayout`, same :class:`ObservationEncoder`, its own
actions of this episode as the "tried" flags) and picks the candidate with
the highest Q-value among those the guidance leaves it.  It does not learn
while the swarm runs; train it with ``swarmlearn rl train
swarmlearn/<Kind>-v0`` and load it with :meth:`DQNWorker.from_run`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn.core.actions import Action
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent
from swarmlearn.core.manager import Guidance
from swarmlearn.core.workers import narrow
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.rl._dqn import spec_from_state
from swarmlearn.rl._mlp import MLPQNet, MLPSpec
from swarmlearn.rl._protocols import StateTree
from swarmlearn.rl._run import RunConfig
from swarmlearn.rl._rundir import RunDir
from swarmlearn.rl._swarm_codec import (
    ActionLayout,
    ObservationEncoder,
    SwarmCodec,
    SwarmEnvConfig,
    kind_of_env_id,
    target_slots,
)
from swarmlearn.types import Outcome, WorkerId

__all__ = ["DQNWorker", "GreedyPolicy"]

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


class GreedyPolicy:
    """The Q-values of a trained network; no exploration, no learning."""

    def __init__(self, spec: MLPSpec, params: F32) -> None:
        if params.shape != (spec.n_params,):
            raise ArtifactError(f"{params.shape[0]} parameters do not fit network {spec}")
        self.net = MLPQNet(spec, np.random.default_rng(0))
        self.net.params[...] = params

    @classmethod
    def from_state(cls, agent_state: StateTree) -> GreedyPolicy:
        """From a DQN ``state_dict`` (e.g. ``checkpoint["agent"]``)."""
        try:
            return cls(spec_from_state(agent_state), np.asarray(agent_state["params"], np.float32))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"not a DQN agent state: {exc!r}") from exc

    def q_values(self, obs: F32) -> F32:
        return self.net.q_values(obs)


class DQNWorker:
    """Acts greedily with a DQN trained on the gymnasium form of the swarm's environment."""

    blocking = False

    def __init__(
        self,
        worker_id: WorkerId,
        policy: GreedyPolicy,
        layout: ActionLayout,
        encoder: ObservationEncoder,
    ) -> None:
        if policy.net.spec.obs_dim != encoder.size or policy.net.spec.n_actions != layout.size:
            raise ConfigError(
                f"policy network {policy.net.spec} does not fit an observation of "
                f"{encoder.size} values and {layout.size} actions",
                field="policy",
            )
        self.id = worker_id
        self.policy = policy
        self.layout = layout
        self.encoder = encoder
        self._tried = np.zeros(layout.size, np.bool_)
        self._slots: dict[str, int] = {}

    @classmethod
    def from_run(
        cls, worker_id: WorkerId, run_dir: Path | str, *, checkpoint: str = "best"
    ) -> DQNWorker:
        """Load the ``best`` (or ``latest``) policy of a run trained on ``swarmlearn/<Kind>-v0``."""
        if checkpoint not in {"best", "latest"}:
            raise ConfigError(
                f"checkpoint: expected 'best' or 'latest', got {checkpoint!r}",
                field="checkpoint",
                value=checkpoint,
            )
        run = RunDir.open(run_dir)
        config = RunConfig.from_mapping(run.read_config())
        kind = kind_of_env_id(config.env_id)
        env_config = SwarmEnvConfig(**{"kind": kind, **config.env_kwargs})
        codec = SwarmCodec.for_config(env_config)
        state = run.load_best() if checkpoint == "best" else run.load_checkpoint()
        return cls(worker_id, GreedyPolicy.from_state(state["agent"]), codec.layout, codec.encoder)

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        if observation.step == 0:
            self._tried[:] = False
        self._slots = target_slots(observation.targets, self.layout.width)
        candidates = narrow(observation.candidates, guidance, self.id)
        mask = self.layout.mask(candidates, self._slots)
        if not mask.any():
            logger.debug("worker %s: no candidate fits the policy's action layout", self.id)
            return candidates[0].action
        q = self.policy.q_values(self.encoder.encode(observation, self._tried)[None])[0]
        best = int(np.where(mask, q, -np.inf).argmax())
        return self.layout.action(best, self._slots)

    def observe(self, event: ActionEvent) -> None:
        index = self.layout.index(Action(event.action, event.target, event.args), self._slots)
        if index is not None:
            self._tried[index] = True

    def end_episode(self, outcome: Outcome) -> None:
        self._tried[:] = False


def build_rl_workers(scenario: Any, env: Any, **_: Any) -> list[DQNWorker]:
    """The ``rl`` worker kind of a scenario: ``workers.policy_path`` names a trained run."""
    path = scenario.workers.policy_path
    if not path:
        raise ConfigError(
            "workers.policy_path: RL workers need a trained run directory "
            "(train one with `swarmlearn rl train swarmlearn/<Kind>-v0`)",
            field="workers.policy_path",
        )
    return [DQNWorker.from_run(i, path) for i in range(scenario.workers.count)]
