"""The pure DQN arithmetic, checked against PyTorch and SB3 where they have the same thing.

Tests that take the ``torch`` or ``sb3`` fixture skip without it; the rest always run.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.rl._math import (
    AdamBuffers,
    adam_step,
    clip_by_global_norm,
    flush_decaying_tiny,
    huber,
    huber_grad,
    importance_weights,
    linear_schedule,
    n_step_return,
    td_targets,
)


def test_linear_schedule_values() -> None:
    assert linear_schedule(1.0, 0.04, 0.16, 0.0) == 1.0
    assert linear_schedule(1.0, 0.04, 0.16, 0.08) == pytest.approx(0.52)
    assert linear_schedule(1.0, 0.04, 0.16, 0.16) == 0.04
    assert linear_schedule(1.0, 0.04, 0.16, 0.9) == 0.04
    assert linear_schedule(1.0, 0.04, 0.0, 0.0) == 0.04  # SB3 divides by zero here


@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(1e-3, 1),
    st.integers(0, 10_000),
)
@settings(max_examples=300, deadline=None)
def test_linear_schedule_matches_sb3_linear_fn(
    sb3: ModuleType, start: float, end: float, fraction: float, step: int
) -> None:
    """SB3's DQN epsilon schedule (``LinearSchedule``, once ``get_linear_fn``) as DQN uses it:
    ours on ``step / total``, SB3's on the progress remaining ``1 - step / total``."""
    total = 10_000
    theirs = sb3.common.utils.LinearSchedule(start, end, fraction)(1.0 - step / total)
    assert linear_schedule(start, end, fraction, step / total) == pytest.approx(theirs, abs=1e-9)


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
def test_huber_and_its_gradient_match_torch(torch: ModuleType, values: list[float]) -> None:
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


def test_clip_by_global_norm_matches_torch(torch: ModuleType) -> None:
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


def test_adam_step_reproduces_torch_adam(torch: ModuleType) -> None:
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


def _subnormal(x: np.ndarray) -> int:
    return int(((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)).sum())


def test_adam_moments_of_unused_parameters_never_turn_subnormal(torch: ModuleType) -> None:
    """Zero gradients after a start: the moments reach 0 without subnormals; same parameters."""
    rng = np.random.default_rng(2)
    params = rng.normal(size=64).astype(np.float32)
    t_param = torch.nn.Parameter(torch.from_numpy(params.copy()))
    opt = torch.optim.Adam([t_param], lr=1e-3)
    state = AdamBuffers(64)
    found = 0
    for k in range(1200):  # 0.9**k passes through the subnormals between k~830 and k~990
        grad = rng.normal(size=64).astype(np.float32) if k < 5 else np.zeros(64, np.float32)
        grad[:32] = 0.0 if k >= 5 else grad[:32]
        t_param.grad = torch.from_numpy(grad.copy())
        opt.step()
        adam_step(params, grad, state, lr=1e-3)
        found += _subnormal(state.exp_avg) + _subnormal(state.exp_avg_sq)
    assert found == 0  # (torch's own exp_avg sticks at a subnormal, ~6e-45, here)
    np.testing.assert_allclose(params, t_param.detach().numpy(), rtol=1e-5, atol=1e-6)


@given(st.floats(0.5, 0.9999), st.integers(1, 64))
def test_flush_keeps_normal_values_and_zeroes_only_tiny_ones(beta: float, steps: int) -> None:
    x = np.array([1e-3, -1e-20, 1e-31, -1e-36, 1e-39, 0.0], np.float32)
    flush_decaying_tiny(x, beta, steps)
    assert x[0] == np.float32(1e-3) and x[1] == np.float32(-1e-20)  # >= 1e-30: untouched
    assert x[4] == 0.0  # already subnormal
    small = np.abs(x[(x != 0) & (np.abs(x) < 1e-30)].astype(np.float64))
    assert (small * beta ** (steps + 1) >= np.finfo(np.float32).tiny).all()  # stay normal


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
