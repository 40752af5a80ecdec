"""A pool of gymnasium environments stepped in lockstep, with exact restore.

Every episode is started with its own seed (``seed + k`` for the k-th
episode of the pool) and the pool logs the actions taken since.  A
gymnasium environment is deterministic given ``reset(seed=...)`` and its
actions, so :meth:`EnvPool.load_state_dict` rebuilds each environment's
current state by replaying its episode: a checkpoint needs no pickled
environment.  (An environment that is not deterministic is detected and
restarted, with a warning.)

When an episode ends the pool resets that environment on the same step
and reports the *final* observation in ``next_obs`` separately from the
first observation of the next episode in ``obs``.

Environments that put an ``action_mask`` in their ``info`` (the swarm
environments do) get it tracked: ``mask`` for ``obs``, ``next_mask`` for
``next_obs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from swarmlearn._extras import require
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.rl._protocols import EpisodeStatus, StateTree

__all__ = ["EnvPool", "FinishedEpisode", "VectorStep", "make_env"]

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Policy = Callable[[F32, Bool | None], I64]


class FinishedEpisode(NamedTuple):
    env_index: int
    total_reward: float
    length: int
    status: EpisodeStatus


class VectorStep(NamedTuple):
    """What one lockstep step of the pool returned."""

    obs: F32
    """Observations to act on next (first of a new episode where one ended)."""
    next_obs: F32
    """Observations the step led to (the final one where an episode ended)."""
    reward: npt.NDArray[np.float32]
    terminated: Bool
    truncated: Bool
    finished: list[FinishedEpisode]
    mask: Bool | None = None
    """Allowed actions for ``obs`` (None: the environments give no masks)."""
    next_mask: Bool | None = None
    """Allowed actions for ``next_obs``."""


def _take_mask(out: Bool | None, i: int, info: dict[str, Any]) -> None:
    """Copy ``info["action_mask"]`` (if any) into row ``i`` of ``out`` (if any)."""
    found = info.get("action_mask")
    if out is not None and found is not None:
        out[i] = found


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id, **kwargs)``; ConfigError naming the id when it is unknown.

    ``swarmlearn/<Kind>-v0`` ids (the swarm's environments) are registered on first use.
    """
    gym = require("gymnasium", "rl")
    if env_id.startswith("swarmlearn/"):
        from swarmlearn.rl._swarm_env import register_swarm_envs

        register_swarm_envs()
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"env: cannot make {env_id!r}: {exc}", field="env", value=env_id) from exc


class EnvPool:
    """``n`` gymnasium environments with Box observations and Discrete actions."""

    def __init__(self, envs: Sequence[Any], *, seed: int = 0) -> None:
        if not envs:
            raise ConfigError("an EnvPool needs at least one environment", field="n_envs")
        gym = require("gymnasium", "rl")
        first = envs[0]
        if not isinstance(first.action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"env: action space {first.action_space} is not Discrete", field="env"
            )
        if not isinstance(first.observation_space, gym.spaces.Box):
            raise ConfigError(
                f"env: observation space {first.observation_space} is not a Box", field="env"
            )
        self.envs = list(envs)
        self.n = len(self.envs)
        self.obs_dim = int(np.prod(first.observation_space.shape))
        self.n_actions = int(first.action_space.n)
        self.seed = seed
        self.obs: F32 = np.zeros((self.n, self.obs_dim), np.float32)
        self.started = False
        self._next_episode = 0
        self._episode_seed = [0] * self.n
        self._actions: list[list[int]] = [[] for _ in range(self.n)]
        self._returns = [0.0] * self.n
        self.mask: Bool | None = None
        """Allowed actions for ``obs`` when the environments report ``info["action_mask"]``."""

    @classmethod
    def make(cls, env_id: str, n: int = 1, *, seed: int = 0, **kwargs: Any) -> EnvPool:
        if n < 1:
            raise ConfigError(f"n_envs: expected >= 1, got {n}", field="n_envs", value=n)
        return cls([make_env(env_id, **kwargs) for _ in range(n)], seed=seed)

    def _start_episode(self, i: int) -> F32:
        seed = self.seed + self._next_episode
        self._next_episode += 1
        self._episode_seed[i] = seed
        self._actions[i] = []
        self._returns[i] = 0.0
        obs, info = self.envs[i].reset(seed=seed)
        if self.mask is None and "action_mask" in info:
            self.mask = np.ones((self.n, self.n_actions), np.bool_)
        _take_mask(self.mask, i, info)
        return np.asarray(obs, np.float32).reshape(-1)

    def reset(self) -> F32:
        """Start an episode in every environment; returns the first observations."""
        for i in range(self.n):
            self.obs[i] = self._start_episode(i)
        self.started = True
        return self.obs.copy()

    def step(self, actions: I64) -> VectorStep:
        """Step every environment once; reset those whose episode ended."""
        n = self.n
        next_obs = np.empty((n, self.obs_dim), np.float32)
        reward = np.empty(n, np.float32)
        terminated = np.zeros(n, np.bool_)
        truncated = np.zeros(n, np.bool_)
        next_mask = None if self.mask is None else np.ones_like(self.mask)
        finished: list[FinishedEpisode] = []
        for i, env in enumerate(self.envs):
            action = int(actions[i])
            obs, r, term, trunc, info = env.step(action)
            _take_mask(next_mask, i, info)
            self._actions[i].append(action)
            self._returns[i] += float(r)
            next_obs[i] = np.asarray(obs, np.float32).reshape(-1)
            reward[i] = r
            terminated[i] = term
            truncated[i] = trunc
            if term or trunc:
                status = EpisodeStatus.TERMINATED if term else EpisodeStatus.TRUNCATED
                finished.append(FinishedEpisode(i, self._returns[i], len(self._actions[i]), status))
                self.obs[i] = self._start_episode(i)
            else:
                self.obs[i] = next_obs[i]
                if next_mask is not None and self.mask is not None:
                    self.mask[i] = next_mask[i]
        mask = None if self.mask is None else self.mask.copy()
        return VectorStep(
            self.obs.copy(), next_obs, reward, terminated, truncated, finished, mask, next_mask
        )

    def run_episodes(self, policy: Policy, n_episodes: int, *, seed: int) -> list[FinishedEpisode]:
        """Play ``n_episodes`` whole episodes with ``policy(obs, mask)`` (seeds ``seed + k``).

        Batched over the pool's environments and independent of the training
        state: for an evaluation pool.  Results come in episode order;
        ``env_index`` is the episode number.
        """
        results: dict[int, FinishedEpisode] = {}
        slot_episode = [-1] * self.n  # episode number running in each env, -1: idle
        obs = np.zeros((self.n, self.obs_dim), np.float32)
        masks: Bool | None = None
        returns = [0.0] * self.n
        lengths = [0] * self.n
        started = 0
        while len(results) < n_episodes:
            for i in range(self.n):
                if slot_episode[i] < 0 and started < n_episodes:
                    first, info = self.envs[i].reset(seed=seed + started)
                    if "action_mask" in info and masks is None:
                        masks = np.ones((self.n, self.n_actions), np.bool_)
                    _take_mask(masks, i, info)
                    obs[i] = np.asarray(first, np.float32).reshape(-1)
                    slot_episode[i], returns[i], lengths[i] = started, 0.0, 0
                    started += 1
            active = [i for i in range(self.n) if slot_episode[i] >= 0]
            actions = policy(obs[active], None if masks is None else masks[active])
            for i, action in zip(active, actions, strict=True):
                o, r, term, trunc, info = self.envs[i].step(int(action))
                _take_mask(masks, i, info)
                obs[i] = np.asarray(o, np.float32).reshape(-1)
                returns[i] += float(r)
                lengths[i] += 1
                if term or trunc:
                    episode = slot_episode[i]
                    status = EpisodeStatus.TERMINATED if term else EpisodeStatus.TRUNCATED
                    results[episode] = FinishedEpisode(episode, returns[i], lengths[i], status)
                    slot_episode[i] = -1
        return [results[k] for k in range(n_episodes)]

    def close(self) -> None:
        for env in self.envs:
            env.close()

    # ---- state --------------------------------------------------------------------------

    def state_dict(self) -> StateTree:
        """Seeds and action logs of the running episodes (enough to replay them)."""
        return {
            "n": self.n,
            "seed": self.seed,
            "started": self.started,
            "next_episode": self._next_episode,
            "episode_seed": list(self._episode_seed),
            "returns": list(self._returns),
            "actions": {f"env{i}": np.asarray(a, np.int64) for i, a in enumerate(self._actions)},
        }

    def load_state_dict(self, state: StateTree) -> None:
        """Rebuild every environment's state by replaying its current episode."""
        if int(state["n"]) != self.n:
            raise ArtifactError(f"checkpoint has {state['n']} environments, this pool {self.n}")
        self.seed = int(state["seed"])
        self.started = bool(state["started"])
        self._next_episode = int(state["next_episode"])
        if not self.started:
            return
        for i in range(self.n):
            actions = [int(a) for a in np.asarray(state["actions"][f"env{i}"])]
            self._replay(i, int(state["episode_seed"][i]), actions, float(state["returns"][i]))

    def _replay(self, i: int, seed: int, actions: list[int], expected_return: float) -> None:
        env = self.envs[i]
        obs, info = env.reset(seed=seed)
        total, ended = 0.0, False
        for action in actions:
            obs, r, term, trunc, info = env.step(action)
            total += float(r)
            if term or trunc:
                ended = True
                break
        if ended or total != expected_return:
            logger.warning(
                "env %d did not replay to its checkpointed state (not deterministic?); "
                "starting a new episode, so this resume is not exact",
                i,
            )
            self.obs[i] = self._start_episode(i)
            return
        self._episode_seed[i] = seed
        self._actions[i] = actions
        self._returns[i] = total
        _take_mask(self.mask, i, info)
        self.obs[i] = np.asarray(obs, np.float32).reshape(-1)
