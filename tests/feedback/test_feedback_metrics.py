"""The metrics agree with scikit-learn; bootstrap intervals hold the point estimate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.feedback import (
    bootstrap,
    confusion_matrix,
    evaluate_predictions,
    fit_temperature,
    macro_f1,
    paired_bootstrap,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")

pairs = st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=60)))


@pytest.mark.filterwarnings("ignore:A single label was found")
@settings(max_examples=200, deadline=None)
@given(pairs)
def test_macro_f1_and_confusion_match_sklearn(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, rows = case
    t = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    want = sklearn_metrics.f1_score(t, p, average="macro", zero_division=0)
    assert macro_f1(t, p, n) == pytest.approx(want, abs=1e-12)
    assert (confusion_matrix(t, p, n) == sklearn_metrics.confusion_matrix(
        t, p, labels=list(range(n)))).all()


def test_bootstrap_intervals() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, t, rng.integers(0, 4, 200))
    iv = bootstrap(t, p, 4, rounds=500)
    assert iv.low < iv.value < iv.high and iv.high - iv.low < 0.2
    assert bootstrap(t, p, 4, rounds=500) == iv  # seeded
    same, p_not_better = paired_bootstrap(t, p, p, 4, rounds=200)
    assert same.value == same.low == same.high == 0.0 and p_not_better == 1.0
    better, p_value = paired_bootstrap(t, t, p, 4, rounds=500)
    assert better.low > 0 and p_value < 0.01


def test_evaluation_record() -> None:
    ev = evaluate_predictions(["a", "b"], [0, 0, 1, 1], [0, 1, 1, 1], rounds=100)
    assert ev.confusion == ((1, 1), (0, 2)) and ev.accuracy.value == 0.75
    assert ev.f1 == pytest.approx((2 / 3, 0.8))
    assert ev.to_dict()["macro_f1"]["value"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_temperature_tempers_overconfident_logits() -> None:
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 300)
    right = rng.random(300) < 0.7  # 70 % right, but every logit says "certain"
    pred = np.where(right, t, (t + 1) % 3)
    logits = np.full((300, 3), -10.0)
    logits[np.arange(300), pred] = 10.0
    temp = fit_temperature(logits, t)
    assert temp > 5
    z = logits / temp
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert 0.6 < p.max(axis=1).mean() < 0.8  # confidence near the accuracy
    calibrated = np.eye(3)[t] * 2.0  # confident and right: no softening wanted
    assert fit_temperature(calibrated, t) <= 0.3
