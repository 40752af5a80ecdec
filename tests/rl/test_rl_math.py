"""The pure DQN arithmetic, checked against PyTorch where PyTorch has the same thing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.rl._math import (
    AdamBuffers,
    adam_step,
    clip_by_global_norm,
    huber,
    huber_grad,
    importance_weights,
    linear_schedule,
    n_step_return,
    td_targets,
)

torch = pytest.importorskip("torch")


def test_linear_schedule_matches_sb3_linear_fn() -> None:
    assert linear_schedule(1.0, 0.04, 0.16, 0.0) == 1.0
    assert linear_schedule(1.0, 0.04, 0.16, 0.08) == pytest.approx(0.52)
    assert linear_schedule(1.0, 0.04, 0.16, 0.16) == 0.04
    assert linear_schedule(1.0, 0.04, 0.16, 0.9) == 0.04
    assert linear_schedule(1.0, 0.04, 0.0, 0.0) == 0.04


def test_td_target_termination_does_not_bootstrap_truncation_does() -> None:
    rewards = np.array([1.0, 1.0], np.float32)
    # row 0 terminated (discount 0), row 1 truncated (discount gamma): bootstraps.
    discounts = np.array([0.0, 0.99], np.float32)
    next_q = np.array([[5.0, 7.0], [5.0, 7.0]], np.float32)
    np.testing.assert_allclose(td_targets(rewards, discounts, next_q), [1.0, 1.0 + 0.99 * 7.0])


def test_double_dqn_target_takes_online_argmax_and_target_value() -> None:
    rewards = np.zeros(2, np.float32)
    discounts = np.ones(2, np.float32)
    next_q_target = np.array([[1.0, 9.0], [4.0, 2.0]], np.float32)
    next_q_online = np.array([[3.0, 0.0], [0.0, 3.0]], np.float32)  # picks 0, then 1
    np.testing.assert_allclose(
        td_targets(rewards, discounts, next_q_target, next_q_online), [1.0, 2.0]
    )


@given(st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=16))
@settings(max_examples=50, deadline=None)
def test_huber_and_its_gradient_match_torch(values: list[float]) -> None:
    delta = np.asarray(values, np.float32)
    weights = np.linspace(0.5, 1.5, len(values)).astype(np.float32)
    d = torch.tensor(delta, requires_grad=True)
    loss = (
        torch.nn.functional.smooth_l1_loss(d, torch.zeros_like(d), reduction="none")
        * torch.from_numpy(weights)
    ).mean()
    loss.backward()
    np.testing.assert_allclose((huber(delta) * weights).mean(), loss.item(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(huber_grad(delta, weights), d.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_by_global_norm_matches_torch() -> None:
    rng = np.random.default_rng(0)
    grad = rng.normal(size=100).astype(np.float32) * 3
    p = torch.nn.Parameter(torch.zeros(100))
    p.grad = torch.from_numpy(grad.copy())
    expected_norm = float(torch.nn.utils.clip_grad_norm_([p], 10.0))
    norm = clip_by_global_norm(grad, 10.0)
    assert norm == pytest.approx(expected_norm, rel=1e-6)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-6)
    small = np.ones(4, np.float32)
    clip_by_global_norm(small, 10.0)
    np.testing.assert_array_equal(small, np.ones(4, np.float32))


def test_adam_step_reproduces_torch_adam() -> None:
    rng = np.random.default_rng(1)
    params = rng.normal(size=50).astype(np.float32)
    t_param = torch.nn.Parameter(torch.from_numpy(params.copy()))
    opt = torch.optim.Adam([t_param], lr=2.3e-3, eps=1e-8)
    state = AdamBuffers(50)
    for _ in range(20):
        grad = rng.normal(size=50).astype(np.float32)
        t_param.grad = torch.from_numpy(grad.copy())
        opt.step()
        adam_step(params, grad, state, lr=2.3e-3, eps=1e-8)
    np.testing.assert_allclose(params, t_param.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert state.step == 20


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=8), st.floats(0, 1))
def test_n_step_return_is_the_discounted_sum(rewards: list[float], gamma: float) -> None:
    expected = sum(r * gamma**k for k, r in enumerate(rewards))
    got = n_step_return(np.asarray(rewards, np.float64), gamma)  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-9)


def test_importance_weights_are_at_most_one_and_one_for_the_rarest() -> None:
    probs = np.array([0.1, 0.2, 0.7])
    w = importance_weights(probs, 0.1, 3, 0.5)
    assert w.max() == pytest.approx(1.0)
    assert w[0] == pytest.approx(1.0)
    assert w[2] == pytest.approx(math.sqrt(0.1 / 0.7), rel=1e-6)
