"""The swarm's task environments as gymnasium environments: ``swarmlearn/<Kind>-v0``.

``gymnasium.make("swarmlearn/Troubleshooting-v0", params={"services": 3})``
after :func:`register_swarm_envs` (``swarmlearn.rl.make_env`` registers on
first use).  Spaces, reward and episode ends are described in
:mod:`swarmlearn.rl._swarm_codec`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmlearn._extras import require
from swarmlearn.core.environment import Observation
from swarmlearn.rl._swarm_codec import F32, SwarmCodec, SwarmEnvConfig, swarm_env_id, target_slots

require("gymnasium", "rl")  # a MissingExtraError naming the extra, rather than an ImportError
import gymnasium as gym  # noqa: E402

__all__ = ["SwarmGymEnv", "register_swarm_envs"]


class SwarmGymEnv(gym.Env[F32, np.int64]):
    """A swarm environment behind the gymnasium API (Box observations, Discrete actions)."""

    metadata = {"render_modes": ["ansi"]}  # noqa: RUF012 - gymnasium's convention

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self.config = SwarmEnvConfig(**config)
        self.swarm_env = self.config.make()
        self.codec = SwarmCodec.probe(self.swarm_env, self.config)
        self.layout, self.encoder = self.codec.layout, self.codec.encoder
        self.action_space = gym.spaces.Discrete(self.layout.size)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.encoder.size,), np.float32)
        self.render_mode = render_mode
        self._value = 0.0
        self._slots: dict[str, int] = {}
        self._tried = np.zeros(self.layout.size, np.bool_)

    def _info(self, obs: Observation) -> dict[str, Any]:
        return {"action_mask": self.layout.mask(obs.candidates, self._slots)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[F32, dict[str, Any]]:
        super().reset(seed=seed)
        task_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        obs = self.swarm_env.reset(task_seed)
        self._slots = target_slots(obs.targets, self.layout.width)
        self._value = self.swarm_env.outcome().value
        self._tried[:] = False
        return self.encoder.encode(obs, self._tried), self._info(obs)

    def step(self, action: np.int64 | int) -> tuple[F32, float, bool, bool, dict[str, Any]]:
        env = self.swarm_env
        result = env.step(self.layout.action(int(action), self._slots))
        self._tried[int(action)] = True
        value = env.outcome().value
        reward = value - self._value - self.config.step_penalty
        if not result.success:
            reward -= self.config.useless_penalty
        self._value = value
        obs = env.observe()
        terminated = env.done
        truncated = not terminated and obs.step >= self.config.max_steps
        info = self._info(obs)
        info["invalid"] = result.invalid
        if terminated or truncated:
            info["outcome"] = env.outcome().to_dict()
        return self.encoder.encode(obs, self._tried), float(reward), terminated, truncated, info

    def render(self) -> str | None:
        return self.swarm_env.render_text() if self.render_mode == "ansi" else None


def register_swarm_envs() -> list[str]:
    """Register every built-in environment kind with gymnasium; returns the ids."""
    from swarmlearn.envs import ENV_KINDS

    ids = []
    for kind in ENV_KINDS:
        env_id = swarm_env_id(kind)
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="swarmlearn.rl._swarm_env:SwarmGymEnv",
                kwargs={"kind": kind},
                disable_env_checker=True,
            )
        ids.append(env_id)
    return ids
