"""Classification metrics as pure functions: confusion matrix, accuracy, macro-F1, intervals.

Classes are indices ``0..n-1``. Macro-F1 averages the F1 of the classes
that occur in the truth or the predictions (scikit-learn's default), a
class never seen and never predicted counting for nothing. The intervals
are percentile bootstraps over the test examples; :func:`paired_bootstrap`
resamples the same examples for two classifiers, so their difference has
an interval of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Evaluation",
    "Interval",
    "accuracy",
    "bootstrap",
    "confusion_matrix",
    "evaluate_predictions",
    "fit_temperature",
    "macro_f1",
    "paired_bootstrap",
    "per_class_f1",
]

IntArray = NDArray[np.int64]
Metric = Callable[[IntArray, IntArray, int], float]


def confusion_matrix(y_true: Sequence[int] | IntArray, y_pred: Sequence[int] | IntArray,
                     n: int) -> IntArray:
    """``m[i, j]``: how many examples of class ``i`` were predicted as ``j``."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def per_class_f1(m: IntArray) -> NDArray[np.float64]:
    """F1 of each class from a confusion matrix (0 where it has no support or predictions)."""
    tp = np.diag(m).astype(np.float64)
    denom = m.sum(axis=0) + m.sum(axis=1)  # predicted + actual = 2tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2.0 * tp / denom, 0.0)
    return f1


def _macro_from_matrix(m: IntArray) -> float:
    present = (m.sum(axis=0) + m.sum(axis=1)) > 0
    return float(per_class_f1(m)[present].mean()) if present.any() else 0.0


def macro_f1(y_true: IntArray, y_pred: IntArray, n: int) -> float:
    return _macro_from_matrix(confusion_matrix(y_true, y_pred, n))


def accuracy(y_true: IntArray, y_pred: IntArray, n: int = 0) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if t.size else 0.0


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate and a percentile interval around it."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _resamples(size: int, rounds: int, seed: int) -> IntArray:
    return np.random.default_rng(seed).integers(0, size, size=(rounds, size), dtype=np.int64)


def bootstrap(y_true: Sequence[int], y_pred: Sequence[int], n: int, metric: Metric = macro_f1,
              *, rounds: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """``metric`` on the data, with a percentile bootstrap interval over the examples."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    value = metric(t, p, n)
    if t.size < 2:
        return Interval(value, value, value)
    stats = np.array([metric(t[i], p[i], n) for i in _resamples(t.size, rounds, seed)])
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(lo), float(hi))


def paired_bootstrap(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], n: int,
                     metric: Metric = macro_f1, *, rounds: int = 2000, level: float = 0.95,
                     seed: int = 0) -> tuple[Interval, float]:
    """``metric(a) - metric(b)`` with a paired bootstrap interval, and the share of
    resamples where ``a`` is not better (a one-sided bootstrap p-value)."""
    t = np.asarray(y_true, dtype=np.int64)
    a, b = np.asarray(pred_a, dtype=np.int64), np.asarray(pred_b, dtype=np.int64)
    value = metric(t, a, n) - metric(t, b, n)
    if t.size < 2:
        return Interval(value, value, value), 0.0 if value > 0 else 1.0
    diffs = np.array([metric(t[i], a[i], n) - metric(t[i], b[i], n)
                      for i in _resamples(t.size, rounds, seed)])
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(lo), float(hi)), float((diffs <= 0).mean())


def fit_temperature(logits: NDArray[np.floating[Any]], targets: NDArray[np.integer[Any]],
                    ) -> float:
    """The softmax temperature T that minimises the negative log-likelihood of ``targets``
    under ``softmax(logits / T)`` (a grid over 0.25…40, log-spaced): confidences that
    mean what they say on held-out data, the predicted label unchanged."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    if z.size == 0:
        return 1.0
    best_t, best_nll = 1.0, math.inf
    for temp in np.geomspace(0.25, 40.0, 121):
        s = z / temp
        s = s - s.max(axis=1, keepdims=True)
        nll = float(-(s[np.arange(len(t)), t] - np.log(np.exp(s).sum(axis=1))).mean())
        if nll < best_nll - 1e-12:
            best_t, best_nll = float(temp), nll
    return best_t


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A classifier's figures on one labeled set."""

    labels: tuple[str, ...]
    n: int
    accuracy: Interval
    macro_f1: Interval
    confusion: tuple[tuple[int, ...], ...]  # rows: true label, columns: predicted
    f1: tuple[float, ...]  # per label

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "n": self.n, "accuracy": self.accuracy.to_dict(),
                "macro_f1": self.macro_f1.to_dict(),
                "confusion": [list(r) for r in self.confusion], "f1": list(self.f1)}


def evaluate_predictions(labels: Sequence[str], y_true: Sequence[int], y_pred: Sequence[int], *,
                         rounds: int = 2000, seed: int = 0) -> Evaluation:
    """Accuracy and macro-F1 with bootstrap intervals, the confusion matrix, per-label F1."""
    n = len(labels)
    m = confusion_matrix(y_true, y_pred, n)
    return Evaluation(
        labels=tuple(labels), n=len(y_true),
        accuracy=bootstrap(y_true, y_pred, n, accuracy, rounds=rounds, seed=seed),
        macro_f1=bootstrap(y_true, y_pred, n, macro_f1, rounds=rounds, seed=seed),
        confusion=tuple(tuple(int(x) for x in row) for row in m),
        f1=tuple(float(x) for x in per_class_f1(m)),
    )
