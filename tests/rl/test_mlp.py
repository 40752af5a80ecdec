"""The hand-written MLP forward/backward against torch.autograd (only that test needs torch)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.rl import MLPQNet, MLPSpec


def _torch_q(torch: ModuleType, net: MLPQNet, obs: np.ndarray) -> tuple[Any, list[Any]]:
    params = [
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
        for w, b in net.layers
    ]
    h = torch.from_numpy(obs)
    for k, (w, b) in enumerate(params):
        h = h @ w + b
        if k < len(params) - 1:
            h = torch.relu(h)
    if net.spec.dueling:
        adv = h[:, 1:]
        h = h[:, :1] + adv - adv.mean(dim=1, keepdim=True)
    return h, [t for pair in params for t in pair]


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("hidden", [(16,), (32, 24)])
def test_forward_and_gradients_match_autograd(
    torch: ModuleType, dueling: bool, hidden: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(0)
    spec = MLPSpec(obs_dim=5, hidden=hidden, n_actions=3, dueling=dueling)
    net = MLPQNet(spec, rng, max_rows=16)
    obs = rng.normal(size=(16, 5)).astype(np.float32)
    q = net.forward_train(obs)
    q_ref, params = _torch_q(torch, net, obs)
    np.testing.assert_allclose(q, q_ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.q_values(obs), q, rtol=1e-6, atol=1e-6)
    # loss over the first 10 rows only (as for Double DQN, where the rest are next observations)
    dq = rng.normal(size=(10, 3)).astype(np.float32)
    (q_ref[:10] * torch.from_numpy(dq)).sum().backward()
    net.backward(dq)
    expected = np.concatenate([p.grad.numpy().ravel() for p in params])
    np.testing.assert_allclose(net.grad, expected, rtol=1e-4, atol=1e-5)


def test_parameters_are_one_flat_vector_the_layers_alias() -> None:
    net = MLPQNet(MLPSpec(obs_dim=2, hidden=(3,), n_actions=2), np.random.default_rng(0))
    assert net.params.size == 2 * 3 + 3 + 3 * 2 + 2
    net.params[:] = 0.0
    assert all(not w.any() and not b.any() for w, b in net.layers)


def test_q_values_with_other_params_use_them() -> None:
    net = MLPQNet(MLPSpec(obs_dim=2, hidden=(3,), n_actions=2), np.random.default_rng(0))
    obs = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(net.q_values(obs, np.zeros_like(net.params)), [[0.0, 0.0]])


def test_bad_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MLPSpec(obs_dim=0, hidden=(3,), n_actions=2)
    with pytest.raises(ConfigError):
        MLPSpec(obs_dim=2, hidden=(0,), n_actions=2)


def test_action_scores_pick_the_same_greedy_action_as_q_values() -> None:
    rng = np.random.default_rng(3)
    for dueling in (False, True):
        net = MLPQNet(MLPSpec(obs_dim=4, hidden=(16,), n_actions=5, dueling=dueling), rng)
        obs = rng.normal(size=(200, 4)).astype(np.float32)
        np.testing.assert_array_equal(
            net.action_scores(obs).argmax(axis=1), net.q_values(obs).argmax(axis=1)
        )
