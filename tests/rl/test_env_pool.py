"""EnvPool: lockstep stepping, final observations, seeded episodes, replay-based restore."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.rl import EnvPool, EpisodeStatus

gym = pytest.importorskip("gymnasium")


def test_episode_end_reports_final_obs_and_resets_with_the_next_seed() -> None:
    pool = EnvPool.make("CartPole-v1", 2, seed=10)
    pool.reset()
    finished = []
    for _ in range(600):
        step = pool.step(np.zeros(2, np.int64))  # always push left: episodes end fast
        for ep in step.finished:
            finished.append(ep)
            i = ep.env_index
            assert step.terminated[i] and ep.status is EpisodeStatus.TERMINATED
            assert not np.array_equal(step.next_obs[i], step.obs[i])  # final vs first of next
        if len(finished) >= 4:
            break
    state = pool.state_dict()
    assert state["next_episode"] == 2 + len(finished)  # one seed per episode: 10, 11, 12 ...
    assert sorted(state["episode_seed"]) == [10 + len(finished), 11 + len(finished)]


def test_truncation_is_reported_as_truncated() -> None:
    pool = EnvPool([gym.make("CartPole-v1", max_episode_steps=5)], seed=0)
    pool.reset()
    statuses = []
    for t in range(5):
        step = pool.step(np.array([t % 2]))  # balancing: no termination within 5 steps
        statuses += [ep.status for ep in step.finished]
    assert statuses == [EpisodeStatus.TRUNCATED]
    assert step.truncated[0] and not step.terminated[0]


def test_restore_replays_the_running_episode_exactly() -> None:
    a = EnvPool.make("CartPole-v1", 3, seed=5)
    a.reset()
    rng = np.random.default_rng(0)
    for _ in range(57):
        a.step(rng.integers(0, 2, 3))
    b = EnvPool.make("CartPole-v1", 3, seed=0)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.obs, a.obs)
    actions = rng.integers(0, 2, 3)
    sa, sb = a.step(actions), b.step(actions)
    np.testing.assert_array_equal(sa.next_obs, sb.next_obs)
    assert sa.finished == sb.finished


def test_a_non_deterministic_env_is_restarted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = EnvPool.make("CartPole-v1", 1, seed=5)
    a.reset()
    a.step(np.array([0]))
    state = a.state_dict()
    state["returns"][0] = 123.0  # as if the replay had diverged
    b = EnvPool.make("CartPole-v1", 1, seed=5)
    with caplog.at_level(logging.WARNING):
        b.load_state_dict(state)
    assert "not exact" in caplog.text


def test_run_episodes_plays_whole_seeded_episodes_in_order() -> None:
    pool = EnvPool.make("CartPole-v1", 3, seed=0)
    eps = pool.run_episodes(lambda obs, mask: np.zeros(len(obs), np.int64), 7, seed=100)
    assert [e.env_index for e in eps] == list(range(7))
    again = pool.run_episodes(lambda obs, mask: np.zeros(len(obs), np.int64), 7, seed=100)
    assert eps == again


def test_unsupported_spaces_and_ids_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        EnvPool([gym.make("Pendulum-v1")])  # continuous actions
    with pytest.raises(ConfigError, match="NoSuchEnv"):
        EnvPool.make("NoSuchEnv-v0")
