"""Replay buffer, n-step folding, and how episode ends set the bootstrap discount."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.errors import ArtifactError
from swarmlearn.rl import DQN, DQNConfig, Experience, NStepFolder, ReplayBuffer, Transitions

GAMMA = 0.9


def _rows(values: list[float]) -> Transitions:
    n = len(values)
    col = np.asarray(values, np.float32)
    return Transitions(
        col[:, None], np.arange(n), col, col[:, None] + 1, np.full(n, GAMMA, np.float32)
    )


def test_ring_buffer_overwrites_the_oldest_and_round_trips() -> None:
    buf = ReplayBuffer(4, 1)
    buf.add(_rows([0, 1, 2]))
    slots = buf.add(_rows([3, 4]))
    assert slots.tolist() == [3, 0] and buf.size == 4 and buf.pos == 1
    batch = buf.gather(np.arange(4))
    assert batch.reward.tolist() == [4, 1, 2, 3]
    copy = ReplayBuffer(4, 1)
    copy.load_state_dict(buf.state_dict())
    np.testing.assert_array_equal(copy.gather(np.arange(4)).obs, batch.obs)
    assert (copy.pos, copy.size) == (1, 4)
    with pytest.raises(ArtifactError):
        ReplayBuffer(5, 1).load_state_dict(buf.state_dict())


def _brute_force(
    rewards: list[float], ends: list[str], n: int
) -> list[tuple[int, float, int, float]]:
    """(start step, return, index of the bootstrap observation, discount) per transition."""
    out = []
    episode_end = {}
    start = 0
    for t, end in enumerate(ends):
        if end != "none":
            for s in range(start, t + 1):
                episode_end[s] = (t, end)
            start = t + 1
    for s in range(len(rewards)):
        if s not in episode_end:
            if s + n > len(rewards):
                continue  # window still open at the end of the stream
            last, end = s + n - 1, "none"
        else:
            t, end = episode_end[s]
            last = min(t, s + n - 1)
            if last < t:
                end = "none"
        m = last - s + 1
        ret = sum(GAMMA**k * rewards[s + k] for k in range(m))
        discount = 0.0 if end == "terminated" else GAMMA**m
        out.append((s, ret, last, discount))
    return out


@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(
            st.floats(-1, 1, width=32), st.sampled_from(["none"] * 4 + ["terminated", "truncated"])
        ),
        min_size=1,
        max_size=30,
    ),
)
@settings(max_examples=200, deadline=None)
def test_n_step_folding_matches_brute_force(n: int, steps: list[tuple[float, str]]) -> None:
    folder = NStepFolder(n, GAMMA, n_envs=1, obs_dim=1)
    got = []
    for t, (reward, end) in enumerate(steps):
        out = folder.push(
            np.array([[t]], np.float32),
            np.array([t]),
            np.array([reward], np.float32),
            np.array([[t + 1]], np.float32),  # next_obs encodes the step it came from
            np.array([end == "terminated"]),
            np.array([end == "truncated"]),
        )
        for o, r, nxt, d in zip(
            out.obs[:, 0], out.reward, out.next_obs[:, 0], out.discount, strict=True
        ):
            got.append((int(o), float(r), int(nxt) - 1, float(d)))
    expected = _brute_force([r for r, _ in steps], [e for _, e in steps], n)
    assert [g[0] for g in sorted(got)] == [e[0] for e in expected]
    for g, e in zip(sorted(got), expected, strict=True):
        assert g[1] == pytest.approx(e[1], abs=1e-5)
        assert g[2] == e[2]
        assert g[3] == pytest.approx(e[3], rel=1e-6)


def test_n_step_state_round_trip_keeps_pending_steps() -> None:
    folder = NStepFolder(3, GAMMA, n_envs=2, obs_dim=1)
    obs = np.zeros((2, 1), np.float32)
    no = np.zeros(2, bool)
    folder.push(obs, np.array([1, 2]), np.array([1.0, 2.0], np.float32), obs, no, no)
    copy = NStepFolder(3, GAMMA, n_envs=2, obs_dim=1)
    copy.load_state_dict(folder.state_dict())
    ended = np.array([True, False])
    a = folder.push(obs, np.array([0, 0]), np.ones(2, np.float32), obs, ended, no)
    b = copy.push(obs, np.array([0, 0]), np.ones(2, np.float32), obs, ended, no)
    assert a.reward.tolist() == b.reward.tolist() == pytest.approx([1 + GAMMA, 1.0])


@pytest.mark.parametrize("n_step", [1, 3])
def test_truncation_bootstraps_and_termination_does_not(n_step: int) -> None:
    """Through the agent: the stored discount is gamma**m after truncation, 0 after termination."""
    agent = DQN(
        DQNConfig(n_step=n_step, learning_starts=10_000, hidden=(8,), gamma=GAMMA),
        obs_dim=1,
        n_actions=2,
        total_steps=100,
        n_envs=2,
    )
    obs = np.zeros((2, 1), np.float32)
    agent.observe(
        Experience(
            obs,
            np.array([0, 1]),
            np.ones(2, np.float32),
            obs + 1,
            terminated=np.array([True, False]),
            truncated=np.array([False, True]),
        )
    )
    batch = agent.buffer.gather(np.arange(agent.buffer.size))
    by_action = dict(zip(batch.action.tolist(), batch.discount.tolist(), strict=True))
    assert by_action[0] == 0.0  # terminated
    assert by_action[1] == pytest.approx(GAMMA)  # truncated: bootstraps from the final observation
    np.testing.assert_array_equal(batch.next_obs, np.ones((2, 1), np.float32))
