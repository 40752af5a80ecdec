"""Clipping, noise and the privacy accounting, checked against independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.errors import ConfigError
from swarmlearn.fed import (
    DpConfig,
    PrivacyLedger,
    add_noise,
    clip_update,
    denoise,
    epsilon_for,
    l2_norm,
    noise_for_epsilon,
)

pytest.importorskip("dp_accounting")


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gaussian_delta(eps: float, mu: float) -> float:
    """Exact δ(ε) of a Gaussian mechanism with μ = sensitivity/σ (Balle & Wang 2018)."""
    return _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)


def _rdp_epsilon(rdp: list[float], orders: list[float], delta: float) -> float:
    """RDP → (ε, δ), the conversion of Canonne, Kamath & Steinke 2020 (Prop. 12 / as
    dp-accounting states it), minimised over the orders; written from the formula."""
    best = math.inf
    for a, r in zip(orders, rdp, strict=True):
        eps = r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, max(eps, 0.0))
    return best


def _sampled_gaussian_rdp(q: float, z: float, alpha: int) -> float:
    """RDP of the Poisson-sampled Gaussian at an integer order (Mironov et al. 2019, eq. 3):
    log Σ_k C(α,k) (1-q)^(α-k) q^k exp((k²-k)/(2z²)) / (α-1)."""
    terms = [math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1)
             + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * z * z)
             for k in range(alpha + 1)]
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / (alpha - 1)


def test_epsilon_of_the_default_settings_matches_an_independent_rdp_computation() -> None:
    # the default: every node each round (q = 1), the z that spends ε = 8 in 5 rounds
    rounds, delta = 5, 1e-5
    z = noise_for_epsilon(8.0, rounds=rounds, delta=delta)
    ours = PrivacyLedger(z, delta=delta)
    for _ in range(rounds):
        spent = ours.record_round()
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [128, 256, 512]
    rdp = [rounds * a / (2 * z * z) for a in orders]  # Gaussian: α/(2z²) per release
    independent = _rdp_epsilon(rdp, orders, delta)
    assert spent.epsilon == pytest.approx(independent, rel=1e-3)
    assert spent.epsilon == pytest.approx(8.0, rel=1e-3)
    # and the exact privacy curve of the composed Gaussian (μ = √T / z) is tighter, not far
    mu = math.sqrt(rounds) / z
    assert _gaussian_delta(spent.epsilon, mu) <= delta
    exact = _bisect(lambda e: _gaussian_delta(e, mu) - delta, 0.01, 50.0)
    assert exact < spent.epsilon < 1.35 * exact


def test_sampled_epsilon_matches_the_binomial_rdp_formula() -> None:
    q, z, rounds, delta = 0.3, 1.1, 20, 1e-5
    orders = list(range(2, 64))
    ledger = PrivacyLedger(z, sample_rate=q, delta=delta, orders=[float(a) for a in orders])
    ours = ledger.spent(rounds).epsilon
    rdp = [rounds * _sampled_gaussian_rdp(q, z, a) for a in orders]
    assert ours == pytest.approx(_rdp_epsilon(rdp, [float(a) for a in orders], delta),
                                 rel=1e-6)


def _bisect(f: object, lo: float, hi: float) -> float:
    assert callable(f)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return hi


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    e = [epsilon_for(1.0, rounds=r) for r in (1, 2, 5, 10)]
    assert e == sorted(e) and e[0] > 0
    assert epsilon_for(2.0, rounds=5) < epsilon_for(1.0, rounds=5)
    assert epsilon_for(1.0, rounds=5, sample_rate=0.2) < epsilon_for(1.0, rounds=5)


def test_noise_for_epsilon_hits_the_target_from_below() -> None:
    for target in (1.0, 8.0):
        z = noise_for_epsilon(target, rounds=5)
        assert epsilon_for(z, rounds=5) <= target
        assert epsilon_for(z * 0.99, rounds=5) > target


def test_the_budget_stops_before_the_round_that_would_exceed_it() -> None:
    z = noise_for_epsilon(4.0, rounds=3)
    ledger = PrivacyLedger(z, budget=4.0)
    released = 0
    while not ledger.would_exceed():
        ledger.record_round()
        released += 1
    assert released == 3
    assert ledger.spent().epsilon <= 4.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(0.01, 100.0))
def test_clipped_updates_are_within_the_bound_and_keep_their_direction(
        values: list[float], clip: float) -> None:
    update = [np.array(values[: len(values) // 2 + 1]), np.array(values[len(values) // 2 + 1:])]
    clipped, norm = clip_update(update, clip)
    assert l2_norm(clipped) <= clip * (1 + 1e-9)
    assert norm == pytest.approx(l2_norm(update))
    if norm <= clip:
        assert all(np.array_equal(a, b) for a, b in zip(clipped, update, strict=True))
    elif norm > 0:
        assert np.allclose(np.concatenate(clipped) * norm / clip, np.concatenate(update))


def test_a_non_finite_update_is_clipped_to_zero() -> None:
    clipped, norm = clip_update([np.array([1.0, math.nan]), np.array([math.inf])], 5.0)
    assert not math.isfinite(norm)
    assert all(np.all(a == 0) for a in clipped)


def test_noise_has_the_stated_standard_deviation() -> None:
    rng = np.random.default_rng(0)
    noisy = add_noise([np.zeros(200_000)], 3.0, rng)[0]
    assert noisy.std() == pytest.approx(3.0, rel=0.01)
    assert abs(noisy.mean()) < 0.05


def test_denoise_keeps_clear_signal_drops_noise_and_adds_own_counts_exactly() -> None:
    rng = np.random.default_rng(1)
    std = 10.0
    others = np.zeros(2000)
    others[:2] = [400.0, 100.0]  # one key the others know well
    mine, sent = np.zeros(2000), np.zeros(2000)
    mine[10:12] = [7.0, 3.0]  # this node's own exact counts of another key
    sent[10:12] = [0.7, 0.3]  # what it released of them (clipped)
    total = others + sent + rng.normal(0, std, 2000)
    out = denoise([total], [mine], [sent], std)[0]
    assert out[0] == pytest.approx(400, abs=40) and out[1] == pytest.approx(100, abs=40)
    assert out[10:12] == pytest.approx([7.0, 3.0], abs=1e-9)
    # pure noise: about `false_keys` (0.05) of the 1,000 keys pass, over many draws
    passed = []
    for seed in range(200):
        noise = np.random.default_rng(seed).normal(0, std, 2000)
        passed.append(np.count_nonzero(denoise([noise], [np.zeros(2000)], [np.zeros(2000)],
                                               std)[0]))
    assert np.mean(passed) / 2 < 0.15
    assert np.all(out >= 0)
    # with no noise the total comes back whole
    assert np.allclose(denoise([total], [sent], [sent], 0.0)[0], total)


def test_dp_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="exactly one of noise_multiplier and target_epsilon"):
        DpConfig(mode="central", clip=1.0)
    with pytest.raises(ConfigError, match=r"dp\.clip"):
        DpConfig(mode="central", clip=0.0, noise_multiplier=1.0)
    with pytest.raises(ConfigError, match=r"dp\.mode"):
        DpConfig(mode="sideways")
    resolved = DpConfig(mode="central", clip=2.0, target_epsilon=8.0).resolve(rounds=5,
                                                                              sample_rate=1.0)
    assert resolved.noise_multiplier is not None and resolved.budget_epsilon == 8.0
