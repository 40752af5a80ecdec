"""Replay: a uniform ring buffer, a prioritized sampler over it, and n-step folding.

The buffer stores one row per transition in preallocated float32 arrays:
``obs, action, reward, next_obs, discount``.  ``discount`` already carries the
end of the episode: ``gamma**n`` when the episode went on or was *truncated*
(truncation bootstraps from ``next_obs``), ``0`` when it *terminated*.  So the
TD target is always ``reward + discount * Q(next_obs)``, for 1-step and
n-step transitions alike (see :class:`NStepFolder`).

Environments that say which actions are allowed (``info["action_mask"]``)
also give a ``next_mask`` per transition: the bootstrap then maximises over
allowed actions only.  The mask array is allocated on the first masked row.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.rl._math import importance_weights, per_priorities
from swarmlearn.rl._sumtree import SumTree

__all__ = ["NStepFolder", "PrioritizedSampler", "ReplayBatch", "ReplayBuffer", "Transitions"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


class Transitions(NamedTuple):
    """Rows ready for the buffer (leading axis: one row per transition)."""

    obs: F32
    action: I64
    reward: F32
    next_obs: F32
    discount: F32
    next_mask: Bool | None = None
    """Actions allowed in ``next_obs`` (None: all)."""


class ReplayBatch(NamedTuple):
    """A sampled batch; ``weights`` are importance weights (all ones when uniform)."""

    obs: F32
    action: I64
    reward: F32
    next_obs: F32
    discount: F32
    slots: I64
    weights: F32
    next_mask: Bool | None = None


class ReplayBuffer:
    """A ring buffer of transitions in float32 NumPy arrays."""

    __slots__ = (
        "_action",
        "_discount",
        "_next_mask",
        "_next_obs",
        "_obs",
        "_reward",
        "capacity",
        "pos",
        "size",
    )

    def __init__(self, capacity: int, obs_dim: int) -> None:
        if capacity < 1:
            raise ConfigError(
                f"buffer_size: expected >= 1, got {capacity}", field="buffer_size", value=capacity
            )
        self.capacity = capacity
        self.pos = 0
        self.size = 0
        self._obs: F32 = np.zeros((capacity, obs_dim), np.float32)
        self._next_obs: F32 = np.zeros((capacity, obs_dim), np.float32)
        self._action: I64 = np.zeros(capacity, np.int64)
        self._reward: F32 = np.zeros(capacity, np.float32)
        self._discount: F32 = np.zeros(capacity, np.float32)
        self._next_mask: Bool | None = None

    def add(self, rows: Transitions) -> I64:
        """Append ``rows`` (overwriting the oldest when full); returns the slots written."""
        n = len(rows.action)
        slots = (self.pos + np.arange(n, dtype=np.int64)) % self.capacity
        if rows.next_mask is not None:
            if self._next_mask is None:  # rows stored so far allowed every action
                self._next_mask = np.ones((self.capacity, rows.next_mask.shape[1]), np.bool_)
            self._next_mask[slots] = rows.next_mask
        if n == 1:
            s = int(slots[0])
            self._obs[s] = rows.obs[0]
            self._next_obs[s] = rows.next_obs[0]
            self._action[s] = rows.action[0]
            self._reward[s] = rows.reward[0]
            self._discount[s] = rows.discount[0]
        else:
            self._obs[slots] = rows.obs
            self._next_obs[slots] = rows.next_obs
            self._action[slots] = rows.action
            self._reward[slots] = rows.reward
            self._discount[slots] = rows.discount
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return slots

    def gather(self, slots: I64, weights: F32 | None = None) -> ReplayBatch:
        """The rows at ``slots`` (any shape; fields keep that leading shape)."""
        if weights is None:
            weights = np.ones(slots.shape, np.float32)
        return ReplayBatch(
            obs=self._obs[slots],
            action=self._action[slots],
            reward=self._reward[slots],
            next_obs=self._next_obs[slots],
            discount=self._discount[slots],
            slots=slots,
            weights=weights,
            next_mask=None if self._next_mask is None else self._next_mask[slots],
        )

    def sample_uniform(self, rng: np.random.Generator, shape: tuple[int, ...]) -> I64:
        """Uniform random slots among the filled ones."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=shape, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the buffer and its write position."""
        n = self.size
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": n,
            "obs": self._obs[:n].copy(),
            "next_obs": self._next_obs[:n].copy(),
            "action": self._action[:n].copy(),
            "reward": self._reward[:n].copy(),
            "discount": self._discount[:n].copy(),
            "next_mask": None if self._next_mask is None else self._next_mask[:n].copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; ArtifactError when shapes do not fit."""
        n = int(state["size"])
        if int(state["capacity"]) != self.capacity or n > self.capacity:
            raise ArtifactError(
                f"replay buffer of capacity {state['capacity']} does not fit {self.capacity}"
            )
        try:
            self._obs[:n] = state["obs"]
            self._next_obs[:n] = state["next_obs"]
            self._action[:n] = state["action"]
            self._reward[:n] = state["reward"]
            self._discount[:n] = state["discount"]
            masks = state.get("next_mask")
            if masks is not None:
                self._next_mask = np.ones((self.capacity, masks.shape[1]), np.bool_)
                self._next_mask[:n] = masks
        except (ValueError, KeyError, AttributeError) as exc:
            raise ArtifactError(f"malformed replay buffer state: {exc}") from exc
        self.size = n
        self.pos = int(state["pos"])


class PrioritizedSampler:
    """Proportional prioritized sampling (Schaul et al. 2016) over a buffer's slots.

    New transitions get the largest priority seen so far; after a gradient
    step their priority becomes ``(|TD error| + eps) ** alpha``.  Sampling is
    stratified: the total priority is cut into ``B`` equal segments and one
    prefix sum is drawn in each.
    """

    __slots__ = ("alpha", "eps", "max_priority", "tree")

    def __init__(self, capacity: int, *, alpha: float, eps: float) -> None:
        self.tree = SumTree(capacity)
        self.alpha = alpha
        self.eps = eps
        self.max_priority = 1.0

    def on_add(self, slots: I64) -> None:
        self.tree.update(slots, np.full(len(slots), self.max_priority, np.float64))

    def sample(
        self, rng: np.random.Generator, batch_size: int, filled: int, beta: float
    ) -> tuple[I64, F32]:
        """``batch_size`` slots drawn proportionally to priority, and their IS weights."""
        total = self.tree.total
        segment = total / batch_size
        prefix = (np.arange(batch_size) + rng.random(batch_size)) * segment
        slots = self.tree.find_prefix(prefix, filled)
        probs = self.tree.get(slots) / total
        weights = importance_weights(probs, self.tree.min / total, filled, beta)
        return slots, weights

    def update(self, slots: I64, td_abs: F32) -> None:
        priorities = per_priorities(td_abs, self.alpha, self.eps)
        self.tree.update(slots, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict[str, Any]:
        return {"tree": self.tree.state_dict(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tree.load_state_dict(state["tree"])
        self.max_priority = float(state["max_priority"])


class NStepFolder:
    """Folds each environment's last ``n`` steps into one n-step transition.

    For a step window ``s_t, a_t, r_t .. r_{t+m-1}, s_{t+m}`` it emits
    ``(s_t, a_t, sum_k gamma^k r_{t+k}, s_{t+m}, discount)`` with
    ``discount = gamma**m`` unless the episode *terminated* inside the window
    (then ``0``).  When an episode ends, every pending step is emitted with
    its shorter window; a truncated episode still bootstraps from its final
    observation.
    """

    __slots__ = ("_pending", "gamma", "n", "obs_dim")

    def __init__(self, n: int, gamma: float, n_envs: int, obs_dim: int) -> None:
        self.n = n
        self.gamma = gamma
        self.obs_dim = obs_dim
        self._pending: list[deque[tuple[F32, int, float]]] = [deque() for _ in range(n_envs)]

    def push(
        self,
        obs: F32,
        action: I64,
        reward: F32,
        next_obs: F32,
        terminated: Bool,
        truncated: Bool,
        next_mask: Bool | None = None,
    ) -> Transitions:
        """Feed one vector step (one row per env); returns the transitions that are complete."""
        out_mask: list[Bool] = []
        out_obs: list[F32] = []
        out_action: list[int] = []
        out_reward: list[float] = []
        out_next: list[F32] = []
        out_discount: list[float] = []
        for i, pending in enumerate(self._pending):
            pending.append((obs[i].copy(), int(action[i]), float(reward[i])))
            ended = bool(terminated[i] or truncated[i])
            if not ended and len(pending) < self.n:
                continue
            flush = len(pending) if ended else 1
            for _ in range(flush):
                ret = 0.0
                for _, _, r in reversed(pending):
                    ret = r + self.gamma * ret
                first_obs, first_action, _ = pending.popleft()
                out_obs.append(first_obs)
                out_action.append(first_action)
                out_reward.append(ret)
                out_next.append(next_obs[i])
                if next_mask is not None:
                    out_mask.append(next_mask[i])
                horizon = len(pending) + 1
                out_discount.append(0.0 if terminated[i] else self.gamma**horizon)
        return Transitions(
            obs=np.asarray(out_obs, np.float32).reshape(-1, self.obs_dim),
            action=np.asarray(out_action, np.int64),
            reward=np.asarray(out_reward, np.float32),
            next_obs=np.asarray(out_next, np.float32).reshape(-1, self.obs_dim),
            discount=np.asarray(out_discount, np.float32),
            next_mask=None
            if next_mask is None
            else np.asarray(out_mask, np.bool_).reshape(len(out_action), next_mask.shape[1]),
        )

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"n_envs": len(self._pending)}
        for i, pending in enumerate(self._pending):
            state[f"env{i}"] = {
                "obs": np.asarray([p[0] for p in pending], np.float32).reshape(-1, self.obs_dim),
                "action": np.asarray([p[1] for p in pending], np.int64),
                "reward": np.asarray([p[2] for p in pending], np.float64),
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n_envs"]) != len(self._pending):
            raise ArtifactError(
                f"n-step state is for {state['n_envs']} envs, not {len(self._pending)}"
            )
        for i, pending in enumerate(self._pending):
            rows = state[f"env{i}"]
            pending.clear()
            for o, a, r in zip(rows["obs"], rows["action"], rows["reward"], strict=True):
                pending.append((np.asarray(o, np.float32), int(a), float(r)))
