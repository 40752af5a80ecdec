"""The swarm's environments as gymnasium environments: spaces, masks, reward, registration."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from swarmlearn.core.actions import Action
from swarmlearn.envs import ENV_KINDS
from swarmlearn.errors import ConfigError
from swarmlearn.rl import (
    ActionLayout,
    EnvPool,
    SwarmCodec,
    SwarmEnvConfig,
    kind_of_env_id,
    make_env,
    swarm_env_id,
)
from swarmlearn.rl._swarm_codec import target_slots

needs_gym = pytest.mark.usefixtures("gym")


@pytest.mark.parametrize("kind", sorted(ENV_KINDS))
def test_every_kind_passes_gymnasiums_env_checker(gym: ModuleType, kind: str) -> None:
    from gymnasium.utils.env_checker import check_env

    env = make_env(swarm_env_id(kind), max_steps=20)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert info["action_mask"].shape == (env.action_space.n,) and info["action_mask"].any()
    assert kind_of_env_id(swarm_env_id(kind)) == kind


def test_layout_round_trips_every_candidate() -> None:
    config = SwarmEnvConfig(kind="troubleshooting")
    env = config.make()
    codec = SwarmCodec.probe(env, config)
    for seed in range(5):
        obs = env.reset(seed)
        slots = target_slots(obs.targets, codec.layout.width)
        indices = [codec.layout.index(c.action, slots) for c in obs.candidates]
        assert None not in indices and len(set(indices)) == len(indices)
        for cand, index in zip(obs.candidates, indices, strict=True):
            assert codec.layout.action(index, slots) == cand.action  # type: ignore[arg-type]
        mask = codec.layout.mask(obs.candidates, slots)
        assert mask.sum() == len(obs.candidates)


def test_layout_index_of_unknown_things_is_none() -> None:
    layout = ActionLayout(("A", "B"), (True, False), 2)
    assert layout.size == 3
    assert layout.index(Action("C"), {}) is None
    assert layout.index(Action("A", "x"), {"y": 0}) is None
    assert layout.index(Action("B", "x"), {}) is None
    assert layout.action(1, {"x": 0}) == Action("A", "<slot 1>")
    with pytest.raises(ValueError):
        layout.action(3, {})


@needs_gym
def test_return_is_the_swarm_outcome_value() -> None:
    """Rewards are differences of the outcome value, so an episode sums to its final score."""
    env = make_env(swarm_env_id("troubleshooting"), max_steps=200)
    rng = np.random.default_rng(0)
    for seed in range(10):
        _, info = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            _, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
        assert terminated  # random play ends the task (solved or outage) within 200 steps
        value = env.unwrapped.swarm_env.outcome().value
        assert total == pytest.approx(value, abs=1e-9)


@needs_gym
def test_running_out_of_steps_truncates_and_penalties_apply() -> None:
    env = make_env(
        swarm_env_id("troubleshooting"),
        max_steps=3,
        useless_penalty=0.5,
        step_penalty=0.1,
        params={"distractors": 1},
    )
    _, info = env.reset(seed=0)
    layout, slots = env.unwrapped.layout, env.unwrapped._slots
    check = layout.index(Action("CheckStatus", sorted(slots)[0]), slots)
    rewards, flags = [], []
    for _ in range(3):  # CheckStatus on the same service: useful once, then useless
        _, r, terminated, truncated, info = env.step(check)
        rewards.append(r)
        flags.append((terminated, truncated))
    assert flags == [(False, False), (False, False), (False, True)]
    assert rewards[1] == pytest.approx(-0.6) and rewards[2] == pytest.approx(-0.6)
    assert info["outcome"]["kind"] == "timeout"


@needs_gym
def test_env_pool_tracks_masks_for_the_agent() -> None:
    pool = EnvPool.make(swarm_env_id("maze"), 2, seed=1)
    pool.reset()
    assert pool.mask is not None and pool.mask.shape == (2, pool.n_actions)
    step = pool.step(np.array([np.flatnonzero(m)[0] for m in pool.mask]))
    assert step.mask is not None and step.next_mask is not None


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        kind_of_env_id("CartPole-v1")
    with pytest.raises(ConfigError):
        SwarmEnvConfig(kind="nope").make()
