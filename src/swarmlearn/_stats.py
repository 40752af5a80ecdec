"""Small, pure statistics: Student-t intervals, Wilson intervals, pass@k.

Implemented here (not scipy) to keep the core install light; tested against
known values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Summary",
    "betainc",
    "pass_at_k",
    "summarize",
    "t_cdf",
    "t_ppf",
    "welch_ci",
    "wilson",
]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t with ``df`` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Inverse CDF of Student's t (bisection on :func:`t_cdf`, |error| < 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True, slots=True)
class Summary:
    """Mean, sample std and a Student-t confidence interval of the mean."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    minimum: float
    maximum: float
    median: float

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__slots__}


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    n = len(values)
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan)
    mean = math.fsum(values) / n
    ordered = sorted(values)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0
    if n == 1:
        return Summary(1, mean, 0.0, mean, mean, mean, mean, median)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    std = math.sqrt(var)
    half = t_ppf(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, ordered[0], ordered[-1], median)


def ratio_ci(num: Sequence[float], den: Sequence[float],
             level: float = 0.95) -> tuple[float, float, float]:
    """Σnum / Σden over paired per-unit values, with a delta-method (t) interval.

    The ratio estimator of survey sampling: R = Σx / Σy, Var(R) ≈
    Var(x - R·y) / (n · ȳ²). Used for "actions per solved task" (x: an
    episode's actions, y: 1 if it was solved). NaN when Σden is 0.
    """
    n = len(num)
    if n != len(den):
        raise ValueError("ratio_ci: num and den must be paired")
    total = math.fsum(den)
    if n == 0 or total <= 0.0:
        nan = float("nan")
        return (nan, nan, nan)
    r = math.fsum(num) / total
    if n == 1:
        return (r, r, r)
    resid = [x - r * y for x, y in zip(num, den, strict=True)]
    var = math.fsum(e * e for e in resid) / (n - 1)  # the residuals' mean is 0 by construction
    half = t_ppf(0.5 + level / 2.0, n - 1) * math.sqrt(var / n) / (total / n)
    return (r, r - half, r + half)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    z = _z(level)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n attempts with c successes (Chen et al., 2021)."""
    if k > n:
        raise ValueError(f"k={k} > n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def welch_ci(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float, float]:
    """Difference of means (b - a) with a Welch–Satterthwaite t interval."""
    sa, sb = summarize(a), summarize(b)
    if sa.n < 2 or sb.n < 2:
        d = sb.mean - sa.mean
        return (d, float("nan"), float("nan"))
    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    diff = sb.mean - sa.mean
    se = math.sqrt(va + vb)
    if se == 0:
        return (diff, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    half = t_ppf(0.5 + level / 2.0, df) * se
    return (diff, diff - half, diff + half)
