"""The arithmetic of DQN as pure functions: schedules, TD targets, Huber, Adam, PER.

Every function here is deterministic and side-effect free except where it
says ``out``/in place (Adam updates its moment buffers, as the optimizer it
reproduces does).  Shapes: ``B`` is the batch, ``A`` the number of actions.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "AdamBuffers",
    "adam_step",
    "clip_by_global_norm",
    "flush_decaying_tiny",
    "huber",
    "huber_grad",
    "importance_weights",
    "linear_schedule",
    "masked_argmax",
    "n_step_return",
    "per_priorities",
    "td_targets",
]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
"""The smallest normal float32; below it arithmetic runs on subnormals (slow on x86)."""
FLUSH_EVERY = 32
"""Adam steps between two flushes of its moments (see :func:`flush_decaying_tiny`)."""


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """Linear decay from ``start`` to ``end`` over the first ``fraction`` of training.

    ``progress`` is the share of training done, in [0, 1] (Stable-Baselines3's
    ``get_linear_fn`` with ``1 - progress_remaining``).
    """
    if fraction <= 0.0 or progress >= fraction:
        return end
    return start + progress * (end - start) / fraction


def td_targets(
    rewards: F32,
    discounts: F32,
    next_q_target: F32,
    next_q_online: F32 | None = None,
    next_mask: npt.NDArray[np.bool_] | None = None,
) -> F32:
    """``r + discount * Q_target(s', a*)`` for a batch.

    ``discounts`` is ``gamma**n`` where the episode went on (or was truncated:
    truncation bootstraps) and ``0`` where it terminated.  With
    ``next_q_online`` the action is chosen by the online network (Double DQN),
    otherwise by the target network itself (``max``).  ``next_mask`` limits
    the choice to allowed actions (a row with none allowed bootstraps 0).
    """
    chooser = next_q_target if next_q_online is None else next_q_online
    if next_mask is not None:
        chooser = np.where(next_mask, chooser, -np.inf)
    best = chooser.argmax(axis=1)
    bootstrap = next_q_target[np.arange(len(best)), best]
    if next_mask is not None:
        bootstrap = np.where(next_mask.any(axis=1), bootstrap, 0.0)
    target: F32 = (rewards + discounts * bootstrap).astype(np.float32, copy=False)
    return target


def masked_argmax(values: F32, mask: npt.NDArray[np.bool_] | None) -> I64:
    """Row-wise argmax over allowed entries (a row with none allowed: over all)."""
    best: I64 = values.argmax(axis=1)
    if mask is not None:
        masked = np.where(mask, values, -np.inf)
        best = np.where(mask.any(axis=1), masked.argmax(axis=1), best)
    return best


def huber(delta: F32) -> F32:
    """Huber loss with threshold 1 (PyTorch's ``smooth_l1_loss``, beta=1), elementwise."""
    a = np.abs(delta)
    return np.where(a < 1.0, 0.5 * delta * delta, a - 0.5).astype(np.float32, copy=False)


def huber_grad(delta: F32, weights: F32 | None = None) -> F32:
    """d mean(w * huber(delta)) / d delta: ``w * clip(delta, -1, 1) / B``."""
    grad = np.clip(delta, -1.0, 1.0).astype(np.float32, copy=False)
    if weights is not None:
        grad = grad * weights
    return (grad / np.float32(len(delta))).astype(np.float32, copy=False)


def clip_by_global_norm(grad: F32, max_norm: float) -> float:
    """Scale ``grad`` in place so its L2 norm is at most ``max_norm``; returns the norm before.

    Same rule as ``torch.nn.utils.clip_grad_norm_``: multiply by
    ``min(1, max_norm / (norm + 1e-6))``.
    """
    norm = math.sqrt(float(np.dot(grad, grad)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        grad *= np.float32(coef)
    return norm


class AdamBuffers:
    """Adam's state for one flat parameter vector: moments, step count and scratch space."""

    __slots__ = ("exp_avg", "exp_avg_sq", "scratch", "scratch2", "step")

    def __init__(self, size: int) -> None:
        self.exp_avg: F32 = np.zeros(size, np.float32)
        self.exp_avg_sq: F32 = np.zeros(size, np.float32)
        self.scratch: F32 = np.zeros(size, np.float32)
        self.scratch2: F32 = np.zeros(size, np.float32)
        self.step = 0


def adam_step(
    params: F32,
    grad: F32,
    state: AdamBuffers,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> None:
    """One Adam update of ``params`` in place, as ``torch.optim.Adam`` (no weight decay).

    m <- m + (1-b1)(g-m);  v <- b2 v + (1-b2) g^2;
    p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

    computed as ``p - lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps sqrt(1-b2^t))``
    (the same number, one pass fewer over the parameters).  Every
    ``FLUSH_EVERY`` steps the moments that are about to turn subnormal are set
    to 0 (:func:`flush_decaying_tiny`), which keeps the step fast.
    """
    state.step += 1
    t, t2 = state.scratch, state.scratch2
    np.subtract(grad, state.exp_avg, out=t)
    t *= np.float32(1.0 - beta1)
    state.exp_avg += t
    state.exp_avg_sq *= np.float32(beta2)
    np.multiply(grad, grad, out=t)
    t *= np.float32(1.0 - beta2)
    state.exp_avg_sq += t
    bias1 = 1.0 - beta1**state.step
    root_bias2 = math.sqrt(1.0 - beta2**state.step)
    np.sqrt(state.exp_avg_sq, out=t2)
    t2 += np.float32(eps * root_bias2)
    np.divide(state.exp_avg, t2, out=t)
    t *= np.float32(lr * root_bias2 / bias1)
    params -= t
    if state.step % FLUSH_EVERY == 0:
        flush_decaying_tiny(state.exp_avg, beta1, FLUSH_EVERY)
        flush_decaying_tiny(state.exp_avg_sq, beta2, FLUSH_EVERY)


def flush_decaying_tiny(x: F32, beta: float, steps: int) -> None:
    """Zero, in place, the entries that ``steps`` more decays by ``beta`` would make subnormal.

    A parameter whose gradient is 0 (a dead ReLU unit's weights) has its Adam
    moments multiplied by ``beta`` every step, so they sink through the
    subnormal floats on their way to 0, and every Adam pass over the
    parameter vector slows down ~10x on x86 while any are there (measured in
    ``docs/rl.md``).  Entries below ``FLOAT32_TINY / beta**(steps + 1)``
    (at most 1e-30) are set to 0: the change to a parameter update is below
    ``lr * 1e-30 / eps``, far below float32 resolution.
    """
    if beta <= 0.0:
        return
    limit = min(FLOAT32_TINY / beta ** (steps + 1), 1e-30)
    x[np.abs(x) < limit] = 0.0


def n_step_return(rewards: F32, gamma: float) -> float:
    """``sum_k gamma**k * r_k`` over ``rewards`` (oldest first)."""
    total = 0.0
    for r in reversed(rewards.tolist()):
        total = r + gamma * total
    return total


def per_priorities(td_abs: F32, alpha: float, eps: float) -> npt.NDArray[np.float64]:
    """Prioritized replay priorities ``(|delta| + eps) ** alpha``."""
    return np.power(td_abs.astype(np.float64) + eps, alpha)


def importance_weights(
    probs: npt.NDArray[np.float64], min_prob: float, size: int, beta: float
) -> F32:
    """``(N P(i))^-beta`` normalised by the largest possible weight ``(N P_min)^-beta``."""
    weights = np.power(size * probs, -beta)
    max_weight = (size * min_prob) ** -beta
    normalised: F32 = (weights / max_weight).astype(np.float32)
    return normalised
