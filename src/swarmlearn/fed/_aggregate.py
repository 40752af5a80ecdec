"""Aggregating the nodes' updates: pure functions over lists of arrays.

Every aggregator takes the updates of the nodes that answered (each a list
of arrays, new minus old, in one order) and returns one update:

* :func:`fixed_mean` — Σ wᵢΔᵢ / W with a fixed denominator W (FedAvg weighted by
  examples: wᵢ = examples, W = Σ wᵢ; under DP: wᵢ = 1, W = the expected number
  of nodes, so a missing node does not change the scale of the others);
* :func:`total` — ΣΔᵢ, for quantities that are sums (counts: a node's episodes add
  to the federation's counts, they are not averaged);
* :func:`trimmed_mean` — per coordinate, the mean after dropping the ``trim``
  fraction of the largest and of the smallest values (β-trimmed mean);
* :func:`coordinate_median` — per coordinate, the median.

A single poisoned node moves a trimmed mean or median by at most the spread
of the honest values (see :func:`robust_bound`); it can move a mean anywhere.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn.errors import ConfigError

__all__ = [
    "Aggregator",
    "aggregate",
    "coordinate_median",
    "fixed_mean",
    "robust_bound",
    "total",
    "trimmed_mean",
]

F64 = npt.NDArray[np.float64]
Update = Sequence[npt.NDArray[Any]]


class Aggregator(enum.StrEnum):
    MEAN = "mean"  # FedAvg
    SUM = "sum"
    TRIMMED_MEAN = "trimmed-mean"
    MEDIAN = "median"


def _check(updates: Sequence[Update]) -> int:
    if not updates:
        raise ConfigError("aggregate: no updates")
    n = len(updates[0])
    for i, u in enumerate(updates):
        if len(u) != n or any(np.shape(a) != np.shape(b) for a, b in zip(u, updates[0],
                                                                           strict=True)):
            raise ConfigError(f"aggregate: update {i} has other arrays than update 0")
    return n


def fixed_mean(updates: Sequence[Update], weights: Sequence[float] | None = None,
               denominator: float | None = None) -> list[F64]:
    """Σ wᵢΔᵢ / denominator (default weights 1, default denominator Σ wᵢ)."""
    n = _check(updates)
    w = [1.0] * len(updates) if weights is None else [float(x) for x in weights]
    if len(w) != len(updates) or any(not (x >= 0 and math.isfinite(x)) for x in w):
        raise ConfigError(f"aggregate: weights must be finite and >= 0, got {w}")
    den = sum(w) if denominator is None else float(denominator)
    if not den > 0:
        raise ConfigError(f"aggregate: denominator must be > 0, got {den}")
    return [sum((wi * np.asarray(u[k], np.float64) for wi, u in zip(w, updates, strict=True)),
                np.zeros(np.shape(updates[0][k]))) / den for k in range(n)]


def total(updates: Sequence[Update]) -> list[F64]:
    """ΣΔᵢ, array by array."""
    return fixed_mean(updates, denominator=1.0)


def _stack(updates: Sequence[Update], k: int) -> F64:
    return np.stack([np.asarray(u[k], np.float64) for u in updates])


def trimmed_mean(updates: Sequence[Update], trim: float = 0.2) -> list[F64]:
    """Per coordinate, the mean of the values left after cutting ⌊trim·n⌋ from each end."""
    n = _check(updates)
    if not 0.0 <= trim < 0.5:
        raise ConfigError(f"trim: expected 0 <= trim < 0.5, got {trim}", field="trim")
    cut = int(trim * len(updates))
    out: list[F64] = []
    for k in range(n):
        s = np.sort(_stack(updates, k), axis=0)
        out.append(s[cut: len(updates) - cut].mean(axis=0))
    return out


def coordinate_median(updates: Sequence[Update]) -> list[F64]:
    """Per coordinate, the median of the nodes' values."""
    n = _check(updates)
    return [np.median(_stack(updates, k), axis=0) for k in range(n)]


def aggregate(kind: Aggregator, updates: Sequence[Update], *,
              weights: Sequence[float] | None = None, denominator: float | None = None,
              trim: float = 0.2) -> list[F64]:
    """Dispatch on ``kind``; a robust aggregator of n updates is scaled by n / denominator
    when a fixed denominator is given, so sums and means keep one scale."""
    if kind is Aggregator.MEAN:
        return fixed_mean(updates, weights, denominator)
    if kind is Aggregator.SUM:
        return total(updates)
    robust = trimmed_mean(updates, trim) if kind is Aggregator.TRIMMED_MEAN \
        else coordinate_median(updates)
    return robust


def robust_bound(honest: Sequence[Update], poisoned: int = 1) -> float:
    """An L2 bound on how far ``poisoned`` bad updates can move a coordinate-wise
    trimmed mean or median away from the honest updates' median: per coordinate the
    result stays within the range of the honest values (for trim ≥ poisoned/n), so
    the distance is at most ‖max - min‖₂ over the honest values."""
    _check(honest)
    del poisoned  # the bound holds for any count up to the trimmed number
    return math.sqrt(sum(float(np.sum((_stack(honest, k).max(0) - _stack(honest, k).min(0))
                                      ** 2)) for k in range(len(honest[0]))))
