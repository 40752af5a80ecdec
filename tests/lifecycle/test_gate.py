"""The gate: a pure paired rule, exact under the null, measured by simulation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import (
    GateConfig,
    GateDecision,
    TaskResult,
    gate,
    sign_test_p,
    simulate_false_promotion,
)


def side(solved: list[bool], costs: list[float], start: int = 0) -> list[TaskResult]:
    return [TaskResult(start + i, s, c) for i, (s, c) in enumerate(zip(solved, costs, strict=True))]


def test_sign_test_matches_the_binomial_tail() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(9, 1) == pytest.approx(11 / 1024)
    assert sign_test_p(0, 7) == 1.0
    # symmetric: P(X >= w) + P(X >= l + 1) = 1 when n = w + l
    assert sign_test_p(6, 4) + sign_test_p(5, 5) == pytest.approx(1.0)


def test_clearly_better_challenger_is_promoted() -> None:
    n = 30
    champion = side([i % 2 == 0 for i in range(n)], [20.0] * n)
    challenger = side([True] * n, [12.0] * n)
    d = gate(champion, challenger)
    assert d.promote and d.wins == n and d.losses == 0
    assert d.challenger.success_rate == 1.0 and d.champion.success_rate == 0.5
    assert d.challenger.cost_per_solve == 12.0 and d.champion.cost_per_solve == 40.0
    assert "better beyond noise" in d.reason


def test_worse_and_equal_challengers_are_rejected() -> None:
    n = 30
    good = side([True] * n, [10.0] * n)
    worse = side([True] * n, [15.0] * n)
    assert not gate(good, worse).promote
    same = gate(good, good)
    assert not same.promote and same.ties == n and same.p_value == 1.0


def test_fewer_successes_never_promotes_even_when_faster() -> None:
    n = 40
    champion = side([True] * n, [30.0] * n)
    challenger = side([i != 0 for i in range(n)], [5.0] * n)  # fails one task, much faster
    d = gate(champion, challenger)
    assert not d.promote and "solved fewer" in d.reason
    assert d.wins == n - 1 and d.losses == 1


def test_too_few_tasks_is_rejected_and_unpaired_tasks_left_out() -> None:
    champion = side([False] * 10, [0.0] * 10)
    challenger = side([True] * 10, [5.0] * 10, start=5)  # tasks 5..14: 5 paired
    d = gate(champion, challenger, GateConfig(min_tasks=6))
    assert d.paired == 5 and d.unpaired == 10 and not d.promote and "only 5" in d.reason


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        gate([TaskResult(1, True, 1.0), TaskResult(1, True, 2.0)], [])
    with pytest.raises(ConfigError, match="non-finite"):
        gate([TaskResult(1, True, math.nan)], [])
    with pytest.raises(ConfigError, match="alpha"):
        GateConfig(alpha=0.9)


def test_decision_round_trips() -> None:
    d = gate(side([True] * 25, [9.0] * 25), side([True] * 25, [8.0] * 25))
    back = GateDecision.from_dict(d.to_dict())
    assert back == d


results = st.lists(st.tuples(st.booleans(), st.integers(1, 50)), min_size=1, max_size=60)


Pairs = list[tuple[bool, int]]


@settings(max_examples=200, deadline=None)
@given(results, results)
def test_gate_is_antisymmetric_and_pure(a: Pairs, b: Pairs) -> None:
    n = min(len(a), len(b))
    x = side([s for s, _ in a[:n]], [float(c) for _, c in a[:n]])
    y = side([s for s, _ in b[:n]], [float(c) for _, c in b[:n]])
    fwd, back = gate(x, y, GateConfig(min_tasks=1)), gate(y, x, GateConfig(min_tasks=1))
    assert (fwd.wins, fwd.losses, fwd.ties) == (back.losses, back.wins, back.ties)
    assert not (fwd.promote and back.promote)  # never both ways
    assert gate(x, y, GateConfig(min_tasks=1)) == fwd
    assert not gate(x, x, GateConfig(min_tasks=1)).promote


@settings(max_examples=100, deadline=None)
@given(results, st.integers(0, 59))
def test_improving_one_task_never_hurts(a: list[tuple[bool, int]], i: int) -> None:
    """Monotone: making the challenger better on a task never turns a promotion down."""
    base = side([s for s, _ in a], [float(c) for _, c in a])
    chal = list(base)
    k = i % len(chal)
    better = TaskResult(k, True, max(0.0, chal[k].cost - 1.0) if chal[k].solved else chal[k].cost)
    improved = [*chal[:k], better, *chal[k + 1:]]
    cfg = GateConfig(min_tasks=1)
    assert gate(base, improved, cfg).p_value <= gate(base, chal, cfg).p_value


def test_false_promotion_rate_of_two_equal_artifacts_is_below_alpha() -> None:
    """Two equal artifacts, 2,000 gates of 30 tasks: the rate's 95% interval is under 5%."""
    sim = simulate_false_promotion(GateConfig(alpha=0.05), tasks=30, trials=2000, seed=7)
    assert sim.rate < 0.05 and sim.ci[1] < 0.06
    assert sim.promotions > 0  # the test is not vacuous: the gate can be fooled, rarely


def test_simulation_has_power_against_a_better_artifact() -> None:
    sim = simulate_false_promotion(tasks=80, trials=300, seed=3, effect=0.3)
    assert sim.rate > 0.6
