"""Pure statistics against known values, and invariants with hypothesis."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlearn._stats import (
    betainc,
    pass_at_k,
    ratio_ci,
    summarize,
    t_cdf,
    t_ppf,
    welch_ci,
    wilson,
)

# two-sided 95% critical values of Student's t (standard tables)
T975 = {1: 12.7062, 2: 4.3027, 5: 2.5706, 10: 2.2281, 29: 2.0452, 100: 1.9840}


@pytest.mark.parametrize(("df", "value"), sorted(T975.items()))
def test_t_ppf_matches_tables(df: int, value: float) -> None:
    assert t_ppf(0.975, df) == pytest.approx(value, abs=1e-4)


@given(st.floats(0.001, 0.999), st.integers(1, 200))
def test_t_ppf_inverts_t_cdf(p: float, df: int) -> None:
    assert t_cdf(t_ppf(p, df), df) == pytest.approx(p, abs=1e-8)


def test_betainc_known_values() -> None:
    assert betainc(1, 1, 0.3) == pytest.approx(0.3)
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-4)


def test_summary_and_interval() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.mean, s.median, s.minimum, s.maximum) == (3.0, 3.0, 1.0, 5.0)
    assert s.std == pytest.approx(math.sqrt(2.5))
    half = 2.7764 * math.sqrt(2.5) / math.sqrt(5)
    assert (s.ci_low, s.ci_high) == pytest.approx((3 - half, 3 + half), abs=1e-3)
    assert summarize([]).n == 0 and summarize([2.0]).ci_low == 2.0


def test_wilson() -> None:
    lo, hi = wilson(5, 20)
    assert (lo, hi) == pytest.approx((0.1119, 0.4687), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))
    )
)
def test_pass_at_k_properties(args: tuple[int, int, int]) -> None:
    n, c, k = args
    p = pass_at_k(n, c, k)
    assert 0.0 <= p <= 1.0
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    if k < n:
        assert pass_at_k(n, c, k + 1) >= p - 1e-12


def test_pass_at_k_exact() -> None:
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_welch_ci_matches_scipy_on_unequal_variances() -> None:
    # reference: scipy 1.17, ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    # (Welch–Satterthwaite df = 8.37: the two samples differ in size and spread)
    a = [1.0, 2.0, 3.0, 2.0, 1.5, 2.5]
    b = [11.0, 14.5, 9.0, 12.5, 16.0, 10.0, 13.0, 15.5]
    d, lo, hi = welch_ci(a, b)
    assert d == pytest.approx(10.6875)
    assert (lo, hi) == pytest.approx((8.511598981373384, 12.863401018626616), rel=1e-9)


def test_welch_ci_covers_the_true_difference_95_percent_of_the_time() -> None:
    # an interval too wide covers ~100%, one half as wide ~70%: both fall outside 92–98%
    rng = random.Random(7)
    hits = 0
    for _ in range(400):
        a = [rng.gauss(5.0, 1.0) for _ in range(8)]
        b = [rng.gauss(7.0, 3.0) for _ in range(12)]
        _, lo, hi = welch_ci(a, b)
        hits += lo < 2.0 < hi
    assert 0.92 <= hits / 400 <= 0.98


def test_ratio_ci_equals_the_mean_interval_when_every_unit_counts_once() -> None:
    xs = [40.0, 52.0, 47.0, 61.0, 55.0, 49.0]
    r, lo, hi = ratio_ci(xs, [1.0] * len(xs))
    s = summarize(xs)
    assert r == pytest.approx(s.mean)
    assert (lo, hi) == pytest.approx((s.ci_low, s.ci_high))


def test_ratio_ci_counts_failed_attempts_and_covers_the_truth() -> None:
    # actions per solved task: the failures' actions count, the failures do not solve
    r, _, _ = ratio_ci([10.0, 30.0, 20.0], [1.0, 0.0, 1.0])
    assert r == pytest.approx(60.0 / 2.0)
    # coverage: episodes of a known process, true ratio E[a] / P(solve) = 30 / 0.75 = 40
    rng = random.Random(3)
    hits = 0
    for _ in range(400):
        solved = [rng.random() < 0.75 for _ in range(60)]
        acts = [rng.gauss(30.0, 8.0) for _ in solved]
        _, lo, hi = ratio_ci(acts, [float(s) for s in solved])
        hits += lo <= 40.0 <= hi
    assert 0.90 <= hits / 400 <= 0.98
    assert all(math.isnan(v) for v in ratio_ci([5.0], [0.0]))
    with pytest.raises(ValueError):
        ratio_ci([1.0], [1.0, 1.0])
