"""DQN: it learns (loss falls, parameters change), counts like SB3, and round-trips its state."""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pytest

from swarmlearn._config import from_mapping
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.rl import DQN, ActMode, DQNConfig, Experience
from swarmlearn.rl._math import huber

OBS_DIM, N_ACTIONS = 3, 2


def _bandit_batch(rng: np.random.Generator, n: int) -> Experience:
    """One-step episodes: reward 1 for the action that matches the sign of obs[0]."""
    obs = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    action = rng.integers(0, N_ACTIONS, size=n)
    reward = (action == (obs[:, 0] > 0)).astype(np.float32)
    done = np.ones(n, bool)
    return Experience(obs, action, reward, obs, done, np.zeros(n, bool))


def _loss(agent: DQN, batch: Experience) -> float:
    q = agent.q_values(batch.obs)[np.arange(batch.n), batch.action]
    return float(huber(q - batch.reward).mean())


@pytest.mark.parametrize(
    "variant",
    [
        {"double": True, "dueling": True, "n_step": 1},
        {"n_step": 1},
        {"prioritized": True, "double": True},
        {},
    ],
    ids=["double+dueling", "vanilla", "per+double+n-step", "defaults (n-step)"],
)
def test_tiny_training_lowers_the_loss_and_changes_the_parameters(variant: dict) -> None:
    rng = np.random.default_rng(0)
    config = DQNConfig(
        hidden=(32,),
        batch_size=32,
        learning_starts=256,
        train_freq=256,
        gradient_steps=150,
        learning_rate=1e-2,
        **variant,
    )
    agent = DQN(config, obs_dim=OBS_DIM, n_actions=N_ACTIONS, total_steps=10_000, n_envs=256)
    held_out = _bandit_batch(np.random.default_rng(99), 512)
    before_loss, before_params = _loss(agent, held_out), agent.net.params.copy()
    agent.observe(_bandit_batch(rng, 256))  # 256 steps: not past learning_starts, no training
    assert agent.n_updates == 0
    agent.observe(_bandit_batch(rng, 256))  # 512 steps: one phase of 150 gradient steps
    assert agent.n_updates == 150
    assert not np.allclose(agent.net.params, before_params)
    assert _loss(agent, held_out) < 0.5 * before_loss
    greedy = agent.act(held_out.obs, ActMode.EXPLOIT)
    assert (greedy == (held_out.obs[:, 0] > 0)).mean() > 0.8
    assert agent.metrics()["loss"] > 0


COUNTING: dict[str, Any] = {
    "learning_starts": 12,
    "train_freq": 4,
    "gradient_steps": 2,
    "target_update_interval": 6,
    "batch_size": 4,
    "exploration_fraction": 0.5,
    "exploration_final_eps": 0.05,
}
# rl-zoo's Acrobot-v1 shape (benchmarks/dqn.py): no warm-up, and SB3's gradient_steps=-1
# ("as many as the rollout's env steps"), which is train_freq for us with one environment.
COUNTING_NO_WARMUP: dict[str, Any] = {**COUNTING, "learning_starts": 0, "gradient_steps": -1}
COUNTING_STEPS = 40


def _ours(sb3_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SB3's keyword arguments in our terms (one environment)."""
    g = sb3_kwargs["gradient_steps"]
    return {**sb3_kwargs, "gradient_steps": sb3_kwargs["train_freq"] if g < 0 else g}


class Counts(NamedTuple):
    trained: list[tuple[int, int]]
    """(environment step, gradient steps) of every training phase."""
    synced: list[int]
    """Environment steps at which the target network was updated."""
    epsilon: list[float]
    """Exploration rate after each environment step (used for the next action)."""


def _our_counts(kwargs: dict[str, Any]) -> Counts:
    config = DQNConfig(hidden=(8,), n_step=1, **_ours(kwargs))
    agent = DQN(config, obs_dim=1, n_actions=2, total_steps=COUNTING_STEPS)
    counts = Counts([], [], [])
    update_target = agent._update_target

    def recording_update() -> None:
        counts.synced.append(agent.steps)
        update_target()

    agent._update_target = recording_update  # type: ignore[method-assign]
    step = Experience(
        np.zeros((1, 1), np.float32),
        np.array([0]),
        np.ones(1, np.float32),
        np.zeros((1, 1), np.float32),
        np.array([False]),
        np.array([False]),
    )
    for _ in range(COUNTING_STEPS):
        before = agent.n_updates
        agent.observe(step)
        if agent.n_updates > before:
            counts.trained.append((agent.steps, agent.n_updates - before))
        counts.epsilon.append(agent.epsilon)
    return counts


def _sb3_counts(sb3: ModuleType, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]) -> Counts:
    import gymnasium as gym
    from stable_baselines3.dqn import dqn as sb3_dqn

    counts = Counts([], [], [])
    models: list[Any] = []
    polyak_update = sb3_dqn.polyak_update

    def recording_polyak(params: Any, target_params: Any, tau: float) -> None:
        step = models[0].num_timesteps  # called twice per sync (weights, batch-norm stats)
        if not counts.synced or counts.synced[-1] != step:
            counts.synced.append(step)
        polyak_update(params, target_params, tau)

    class Recording(sb3.DQN):  # type: ignore[misc]
        def _on_step(self) -> None:
            super()._on_step()
            counts.epsilon.append(self.exploration_rate)

        def train(self, gradient_steps: int, batch_size: int = 100) -> None:
            counts.trained.append((self.num_timesteps, gradient_steps))
            super().train(gradient_steps, batch_size)

    monkeypatch.setattr(sb3_dqn, "polyak_update", recording_polyak)
    model = Recording(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        policy_kwargs={"net_arch": [8]},
        seed=0,
        device="cpu",
        **kwargs,
    )
    models.append(model)
    model.learn(COUNTING_STEPS)
    return counts


@pytest.mark.parametrize(
    ("kwargs", "trained"),
    [
        # train every 4 steps once past 12 (not at 12), 2 gradient steps each
        (COUNTING, [(t, 2) for t in range(16, 41, 4)]),
        # from the first rollout on, one gradient step per env step of the rollout
        (COUNTING_NO_WARMUP, [(t, 4) for t in range(4, 41, 4)]),
    ],
    ids=["warm-up", "no-warm-up, gradient_steps=-1"],
)
def test_counting_follows_sb3(
    sb3: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    trained: list[tuple[int, int]],
) -> None:
    """Training phases, target syncs and epsilon per step are SB3's DQN's, step for step."""
    ours, theirs = _our_counts(kwargs), _sb3_counts(sb3, monkeypatch, kwargs)
    assert ours.trained == theirs.trained
    assert ours.synced == theirs.synced
    np.testing.assert_allclose(ours.epsilon, theirs.epsilon, rtol=1e-12, atol=1e-12)
    assert ours.trained == trained  # spelled out
    assert ours.synced == list(range(6, 41, 6))  # sync every 6


def test_actions_are_random_before_learning_starts_then_epsilon_greedy() -> None:
    config = DQNConfig(
        hidden=(8,), learning_starts=5, exploration_fraction=0.5, exploration_final_eps=0.0
    )
    agent = DQN(config, obs_dim=2, n_actions=3, total_steps=10)
    obs = np.zeros((500, 2), np.float32)
    assert len(set(agent.act(obs, ActMode.EXPLORE).tolist())) == 3
    agent.steps = 10  # past the exploration fraction: epsilon is 0, acting is greedy
    assert agent.epsilon == 0.0
    greedy = agent.act(obs, ActMode.EXPLOIT)
    np.testing.assert_array_equal(agent.act(obs, ActMode.EXPLORE), greedy)


def test_state_round_trip_restores_everything() -> None:
    rng = np.random.default_rng(0)
    config = DQNConfig(
        hidden=(16,),
        batch_size=8,
        learning_starts=8,
        train_freq=8,
        gradient_steps=3,
        prioritized=True,
        n_step=2,
    )
    a = DQN(config, obs_dim=OBS_DIM, n_actions=N_ACTIONS, total_steps=1000, n_envs=4)
    for _ in range(5):
        a.observe(_bandit_batch(rng, 4))
    b = DQN(config, obs_dim=OBS_DIM, n_actions=N_ACTIONS, total_steps=1000, n_envs=4)
    b.load_state_dict(a.state_dict())
    batch = _bandit_batch(rng, 4)
    for agent in (a, b):
        agent.observe(batch)
        agent.observe(batch)
    np.testing.assert_array_equal(a.net.params, b.net.params)
    np.testing.assert_array_equal(
        a.act(batch.obs, ActMode.EXPLORE), b.act(batch.obs, ActMode.EXPLORE)
    )


def test_state_of_another_network_is_refused() -> None:
    small = DQN(DQNConfig(hidden=(8,)), obs_dim=2, n_actions=2, total_steps=10)
    big = DQN(DQNConfig(hidden=(16,)), obs_dim=2, n_actions=2, total_steps=10)
    with pytest.raises(ArtifactError):
        big.load_state_dict(small.state_dict())
    with pytest.raises(ArtifactError):
        big.load_state_dict({"kind": "ppo"})


@pytest.mark.parametrize(
    ("field", "value"),
    [("gamma", 1.5), ("batch_size", 0), ("tau", 0.0), ("hidden", []), ("per_beta", 2.0)],
)
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping(DQNConfig, {field: value})
    assert err.value.field == field


def test_config_from_mapping_accepts_lists_for_hidden() -> None:
    assert from_mapping(DQNConfig, {"hidden": [64, 64]}).hidden == (64, 64)
