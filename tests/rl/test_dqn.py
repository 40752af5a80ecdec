"""DQN: it learns (loss falls, parameters change), counts like SB3, and round-trips its state."""

from __future__ import annotations

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


def test_counting_follows_sb3() -> None:
    """Train every train_freq steps once past learning_starts; target synced every interval."""
    config = DQNConfig(
        hidden=(8,),
        batch_size=4,
        learning_starts=10,
        train_freq=4,
        gradient_steps=2,
        target_update_interval=6,
    )
    agent = DQN(config, obs_dim=1, n_actions=2, total_steps=100)
    step = Experience(
        np.zeros((1, 1), np.float32),
        np.array([0]),
        np.ones(1, np.float32),
        np.zeros((1, 1), np.float32),
        np.array([False]),
        np.array([False]),
    )
    synced_at = []
    for t in range(1, 25):
        target_before = agent.target_params.copy()
        agent.observe(step)
        if not np.array_equal(target_before, agent.target_params):
            synced_at.append(t)
    # trains at 12, 16, 20, 24 (multiples of 4 beyond 10): 4 phases x 2 steps
    assert agent.n_updates == 8
    # the target only moves once the online network has (first training at 12)
    assert synced_at == [18, 24]


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
