"""DQN with the Rainbow parts that matter most: Double, Dueling, prioritized replay, n-step.

Read top to bottom: :meth:`DQN.act` (epsilon-greedy), :meth:`DQN.observe`
(store, sync the target network, train every ``train_freq`` steps) and
:meth:`DQN._gradient_step`, where the TD target is::

    y = r + discount * Q_target(s', argmax_a Q_online(s', a))   # Double DQN
    y = r + discount * max_a Q_target(s', a)                    # vanilla

``discount`` is ``gamma**n`` unless the episode terminated (then 0), so a
*truncated* episode bootstraps and a *terminated* one does not.

Counting follows Stable-Baselines3's DQN so the two can be compared step for
step: epsilon decays linearly over ``exploration_fraction`` of
``total_steps``; actions are uniformly random before ``learning_starts``;
the target network is synced every ``target_update_interval`` environment
steps; every ``train_freq`` environment steps (once past
``learning_starts``) ``gradient_steps`` gradient steps run.  The target
network cannot change during those gradient steps, so with uniform replay
the whole phase's batches are drawn at once and their target Q-values are
computed in one matrix product.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn._config import check_range, to_mapping
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.rl._blas import BlasThreads
from swarmlearn.rl._math import (
    AdamBuffers,
    adam_step,
    clip_by_global_norm,
    huber,
    huber_grad,
    linear_schedule,
    masked_argmax,
    td_targets,
)
from swarmlearn.rl._mlp import MLPQNet, MLPSpec
from swarmlearn.rl._protocols import ActMode, Experience, StateTree
from swarmlearn.rl._replay import NStepFolder, PrioritizedSampler, ReplayBuffer, Transitions

__all__ = ["DQN", "DQNConfig", "spec_from_state"]

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
STATE_FORMAT = 1


@dataclass(kw_only=True, frozen=True, slots=True)
class DQNConfig:
    """Hyperparameters of :class:`DQN`.

    Defaults are rl-zoo's tuned CartPole-v1 values plus 3-step returns (the
    variant that reached a sustained 475 soonest in the ablation of
    ``benchmarks/dqn.py``, see ``docs/rl.md``); Double DQN, dueling heads and
    prioritized replay are one flag each.  The counting conventions are
    Stable-Baselines3's (``tests/rl/test_dqn.py`` compares them with SB3).
    """

    learning_rate: float = 2.3e-3
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1000
    gamma: float = 0.99
    train_freq: int = 256
    """Environment steps between training phases."""
    gradient_steps: int = 128
    """Gradient steps per training phase."""
    target_update_interval: int = 10
    """Environment steps between target-network updates."""
    tau: float = 1.0
    """1.0: hard copy; below 1: Polyak averaging ``target += tau * (online - target)``."""
    exploration_fraction: float = 0.16
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.04
    hidden: tuple[int, ...] = (256, 256)
    max_grad_norm: float = 10.0
    adam_eps: float = 1e-8
    double: bool = False
    dueling: bool = False
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta: float = 0.4
    """Initial importance-sampling exponent, annealed linearly to 1 over training."""
    per_eps: float = 1e-6
    n_step: int = 3
    save_replay: bool = True
    """Put the replay buffer in checkpoints (needed for exact resume)."""
    blas_threads: int = 1
    """BLAS threads for training and batched evaluation (0: leave BLAS alone); see ``_blas``."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "buffer_size", "train_freq", "gradient_steps", "n_step"):
            check_range(name, getattr(self, name), lo=1)
        for name in ("learning_starts", "target_update_interval", "blas_threads"):
            check_range(name, getattr(self, name), lo=0)
        check_range("learning_rate", self.learning_rate, lo=0.0, lo_open=True)
        check_range("gamma", self.gamma, lo=0.0, hi=1.0)
        check_range("tau", self.tau, lo=0.0, hi=1.0, lo_open=True)
        check_range("exploration_fraction", self.exploration_fraction, lo=0.0, hi=1.0)
        check_range("exploration_initial_eps", self.exploration_initial_eps, lo=0.0, hi=1.0)
        check_range("exploration_final_eps", self.exploration_final_eps, lo=0.0, hi=1.0)
        check_range("max_grad_norm", self.max_grad_norm, lo=0.0, lo_open=True)
        check_range("adam_eps", self.adam_eps, lo=0.0, lo_open=True)
        check_range("per_alpha", self.per_alpha, lo=0.0)
        check_range("per_beta", self.per_beta, lo=0.0, hi=1.0)
        check_range("per_eps", self.per_eps, lo=0.0, lo_open=True)
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(
                f"hidden: expected one or more widths >= 1, got {self.hidden!r}",
                field="hidden",
                value=self.hidden,
            )
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size: {self.batch_size} is larger than buffer_size {self.buffer_size}",
                field="batch_size",
                value=self.batch_size,
            )


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]``."""
    return every > 0 and after // every > before // every


class DQN:
    """A DQN agent for discrete actions and vector observations (a :class:`LearningAgent`)."""

    def __init__(
        self,
        config: DQNConfig,
        *,
        obs_dim: int,
        n_actions: int,
        total_steps: int,
        n_envs: int = 1,
    ) -> None:
        if total_steps < 1:
            raise ConfigError(f"total_steps: expected >= 1, got {total_steps}", field="total_steps")
        self.config = config
        self.total_steps = total_steps
        self.n_envs = n_envs
        self.spec = MLPSpec(
            obs_dim=obs_dim, hidden=config.hidden, n_actions=n_actions, dueling=config.dueling
        )
        self._rng = np.random.default_rng(config.seed)
        rows = 2 * config.batch_size if config.double else config.batch_size
        self.net = MLPQNet(self.spec, self._rng, max_rows=rows)
        self.target_params: F32 = self.net.params.copy()
        self._adam = AdamBuffers(self.spec.n_params)
        self.buffer = ReplayBuffer(config.buffer_size, obs_dim)
        self._per = (
            PrioritizedSampler(config.buffer_size, alpha=config.per_alpha, eps=config.per_eps)
            if config.prioritized
            else None
        )
        self._nstep = (
            NStepFolder(config.n_step, config.gamma, n_envs, obs_dim) if config.n_step > 1 else None
        )
        self.steps = 0
        self.n_updates = 0
        self._last: dict[str, float] = {}
        self._batch_index = np.arange(config.batch_size)
        self._blas = BlasThreads(config.blas_threads)

    # ---- acting -------------------------------------------------------------------------

    @property
    def epsilon(self) -> float:
        c = self.config
        progress = self.steps / self.total_steps
        return linear_schedule(
            c.exploration_initial_eps, c.exploration_final_eps, c.exploration_fraction, progress
        )

    def q_values(self, obs: F32) -> F32:
        return self.net.q_values(np.asarray(obs, np.float32))

    def act(self, obs: F32, mode: ActMode, mask: npt.NDArray[np.bool_] | None = None) -> I64:
        """Greedy actions in ``exploit`` mode; epsilon-greedy (random before learning starts).

        With ``mask`` both the greedy and the random choice keep to allowed actions.
        """
        if mode is ActMode.EXPLOIT:
            return self._greedy(obs, mask)
        n = len(obs)
        if self.steps < self.config.learning_starts:
            return self._random_actions(n, mask)
        if n == 1:  # the common single-environment case, without array reductions
            explore_one = self._rng.random() < self.epsilon
            return self._random_actions(1, mask) if explore_one else self._greedy(obs, mask)
        explore = self._rng.random(n) < self.epsilon
        if explore.all():
            return self._random_actions(n, mask)
        greedy = self._greedy(obs, mask)
        if explore.any():
            return np.where(explore, self._random_actions(n, mask), greedy)
        return greedy

    def _greedy(self, obs: F32, mask: npt.NDArray[np.bool_] | None) -> I64:
        x = np.asarray(obs, np.float32)
        if len(x) == 1:  # one row: too small for BLAS to start threads
            return masked_argmax(self.net.action_scores(x), mask)
        with self._blas.limit():
            return masked_argmax(self.net.action_scores(x), mask)

    def _random_actions(self, n: int, mask: npt.NDArray[np.bool_] | None) -> I64:
        if mask is None:
            return self._rng.integers(0, self.spec.n_actions, size=n)
        return masked_argmax(self._rng.random((n, self.spec.n_actions)).astype(np.float32), mask)

    def on_episode_start(self, env_index: int) -> None:
        """Nothing to reset: the Q-network has no memory."""

    # ---- learning -----------------------------------------------------------------------

    def observe(self, experience: Experience) -> None:
        """Store one vector step; sync the target and train when due."""
        c = self.config
        if self._nstep is None:
            discount = np.where(experience.terminated, 0.0, c.gamma).astype(np.float32)
            rows = Transitions(
                experience.obs,
                experience.action,
                experience.reward,
                experience.next_obs,
                discount,
                experience.next_mask,
            )
        else:
            rows = self._nstep.push(*experience)
        if len(rows.action):
            slots = self.buffer.add(rows)
            if self._per is not None:
                self._per.on_add(slots)
        before, self.steps = self.steps, self.steps + experience.n
        if _crossed(before, self.steps, c.target_update_interval):
            self._update_target()
        if self.steps > c.learning_starts and _crossed(before, self.steps, c.train_freq):
            with self._blas.limit():
                self._train(c.gradient_steps)

    def _update_target(self) -> None:
        if self.config.tau >= 1.0:
            np.copyto(self.target_params, self.net.params)
        else:
            self.target_params += np.float32(self.config.tau) * (
                self.net.params - self.target_params
            )

    def _train(self, n_steps: int) -> None:
        c = self.config
        b = c.batch_size
        losses = np.zeros(n_steps, np.float64)
        q_means = np.zeros(n_steps, np.float64)
        if self._per is None:
            batch = self.buffer.gather(self.buffer.sample_uniform(self._rng, (n_steps * b,)))
            next_q_target = self.net.q_values(batch.next_obs, self.target_params)
            for g in range(n_steps):
                s = slice(g * b, (g + 1) * b)
                _, losses[g], q_means[g] = self._gradient_step(
                    batch.obs[s],
                    batch.action[s],
                    batch.reward[s],
                    batch.next_obs[s],
                    batch.discount[s],
                    next_q_target[s],
                    None,
                    None if batch.next_mask is None else batch.next_mask[s],
                )
        else:
            beta = c.per_beta + (1.0 - c.per_beta) * min(1.0, self.steps / self.total_steps)
            for g in range(n_steps):
                slots, weights = self._per.sample(self._rng, b, self.buffer.size, beta)
                batch = self.buffer.gather(slots, weights)
                next_q_target = self.net.q_values(batch.next_obs, self.target_params)
                td_abs, losses[g], q_means[g] = self._gradient_step(
                    batch.obs,
                    batch.action,
                    batch.reward,
                    batch.next_obs,
                    batch.discount,
                    next_q_target,
                    weights,
                    batch.next_mask,
                )
                self._per.update(slots, td_abs)
        self.n_updates += n_steps
        self._last = {"loss": float(losses.mean()), "q_mean": float(q_means.mean())}

    def _gradient_step(
        self,
        obs: F32,
        action: I64,
        reward: F32,
        next_obs: F32,
        discount: F32,
        next_q_target: F32,
        weights: F32 | None,
        next_mask: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[F32, float, float]:
        """One Adam step on the Huber TD loss; returns |TD error|, the loss and mean Q(s, a)."""
        b = len(action)
        rows = self._batch_index[:b]
        if self.config.double:
            q_all = self.net.forward_train(np.concatenate((obs, next_obs)))
            q, next_q_online = q_all[:b], q_all[b:]
        else:
            q, next_q_online = self.net.forward_train(obs), None
        target = td_targets(reward, discount, next_q_target, next_q_online, next_mask)
        q_taken = q[rows, action]
        delta = q_taken - target
        dq = np.zeros((b, self.spec.n_actions), np.float32)
        dq[rows, action] = huber_grad(delta, weights)
        self.net.backward(dq)
        clip_by_global_norm(self.net.grad, self.config.max_grad_norm)
        adam_step(
            self.net.params,
            self.net.grad,
            self._adam,
            lr=self.config.learning_rate,
            eps=self.config.adam_eps,
        )
        per_sample = huber(delta) if weights is None else huber(delta) * weights
        return np.abs(delta), float(per_sample.mean()), float(q_taken.mean())

    def metrics(self) -> Mapping[str, float]:
        """epsilon, updates so far, buffer fill, and the last phase's mean loss and Q."""
        return {
            "epsilon": self.epsilon,
            "n_updates": float(self.n_updates),
            "buffer_size": float(self.buffer.size),
            **self._last,
        }

    # ---- state --------------------------------------------------------------------------

    def state_dict(self) -> StateTree:
        """Everything needed to continue exactly: weights, optimizer, replay, RNG, counters."""
        c = self.config
        state: StateTree = {
            "format_version": STATE_FORMAT,
            "kind": "dqn",
            "config": to_mapping(c),
            "spec": {
                "obs_dim": self.spec.obs_dim,
                "hidden": list(self.spec.hidden),
                "n_actions": self.spec.n_actions,
                "dueling": self.spec.dueling,
            },
            "total_steps": self.total_steps,
            "params": self.net.params.copy(),
            "target_params": self.target_params.copy(),
            "adam": {
                "exp_avg": self._adam.exp_avg.copy(),
                "exp_avg_sq": self._adam.exp_avg_sq.copy(),
                "step": self._adam.step,
            },
            "rng": self._rng.bit_generator.state,
            "steps": self.steps,
            "n_updates": self.n_updates,
            "last": dict(self._last),
            "replay": self.buffer.state_dict() if c.save_replay else None,
            "per": self._per.state_dict() if self._per is not None and c.save_replay else None,
            "nstep": self._nstep.state_dict() if self._nstep is not None else None,
        }
        return state

    def load_state_dict(self, state: StateTree) -> None:
        """Restore :meth:`state_dict`; ArtifactError if it was made for another network."""
        try:
            self._load(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed DQN state: {exc!r}") from exc

    def _load(self, state: StateTree) -> None:
        if state.get("kind") != "dqn" or state.get("format_version") != STATE_FORMAT:
            raise ArtifactError(
                f"not a DQN state of format {STATE_FORMAT}: "
                f"kind={state.get('kind')!r} format_version={state.get('format_version')!r}"
            )
        spec = spec_from_state(state)
        if spec != self.spec:
            raise ArtifactError(f"checkpoint network {spec} does not fit this agent's {self.spec}")
        self.net.params[...] = state["params"]
        self.target_params[...] = state["target_params"]
        self._adam.exp_avg[...] = state["adam"]["exp_avg"]
        self._adam.exp_avg_sq[...] = state["adam"]["exp_avg_sq"]
        self._adam.step = int(state["adam"]["step"])
        self._rng.bit_generator.state = state["rng"]
        self.steps = int(state["steps"])
        self.n_updates = int(state["n_updates"])
        self._last = {str(k): float(v) for k, v in state["last"].items()}
        if state["replay"] is not None:
            self.buffer.load_state_dict(state["replay"])
        elif self.steps:
            logger.warning("checkpoint has no replay buffer: resuming with an empty one")
        if self._per is not None and state["per"] is not None:
            self._per.load_state_dict(state["per"])
        if self._nstep is not None and state["nstep"] is not None:
            self._nstep.load_state_dict(state["nstep"])


def spec_from_state(state: Mapping[str, Any]) -> MLPSpec:
    """The network spec recorded in a DQN state (for loading a policy without an agent)."""
    raw = state["spec"]
    return MLPSpec(
        obs_dim=int(raw["obs_dim"]),
        hidden=tuple(int(h) for h in raw["hidden"]),
        n_actions=int(raw["n_actions"]),
        dueling=bool(raw["dueling"]),
    )
