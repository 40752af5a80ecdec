"""Learning runs and the proof over independent runs: learning on must beat learning off."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlearn._stats import summarize
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError
from swarmlearn.learn.loop import (
    Interval,
    LearningRunConfig,
    RunFigures,
    SideFigures,
    Verdict,
    run_proof,
    summarize_runs,
    verdict,
)
from swarmlearn.ops.report import learning_html
from swarmlearn.store import SqlStore

#: a few seconds: 3 independent runs of 6 sessions × 5 tasks a side, the last 3 judged
SMALL = LearningRunConfig(sessions=6, episodes=5, analyze_every=3, trials=4, last=3, runs=3)


def test_learning_on_beats_learning_off() -> None:
    """The whole path (snapshots through a store, offline model, search) must pay off.

    Troubleshooting's held-out variant, with no store (each run in its own
    in-memory store). Learning on must be clearly better by the proof's rule and
    by a real margin in every run: 20 points more success and at most 0.7× the
    actions per solved task (measured: +40 to +53 points, 0.37 to 0.54×).
    """
    sc = load_scenario("troubleshooting", variant="heldout")
    proof = run_proof(sc, None, SMALL)
    summary = proof.summary()
    for f in proof.figures():
        assert f.on.success_rate >= f.off.success_rate + 0.2, f
        assert f.on.actions_per_solve <= 0.7 * f.off.actions_per_solve, f
    assert summary.verdict is Verdict.CLEARLY_BETTER, summary.reason
    assert summary.success_gain.low > 0.2
    assert summary.actions_saved.low > 10.0


def test_runs_are_independent_and_paired(tmp_path: Path) -> None:
    sc = load_scenario("troubleshooting", variant="heldout")
    store = SqlStore(f"sqlite:///{tmp_path}/p.db")
    cfg = LearningRunConfig(sessions=2, episodes=3, analyze_every=0, trials=0, last=1, runs=2)
    seen: list[tuple[int, str, int]] = []
    proof = run_proof(sc, store, cfg, progress=lambda r, mode, i, p: seen.append((r, mode, i)))
    assert seen == [(r, m, i) for r in range(2) for m in ("on", "off") for i in range(2)]
    seeds = []
    for report in proof.runs:
        on = [[e.seed for e in store.episodes(session=p.session)] for p in report.on]
        off = [[e.seed for e in store.episodes(session=p.session)] for p in report.off]
        assert on == off  # paired within a run
        seeds.append({s for session in on for s in session})
    assert seeds[0] == set(range(10_000, 10_006)) and seeds[1] == set(range(10_006, 10_012))
    assert [r.worker_seed for r in proof.runs] == [sc.seeds.workers, sc.seeds.workers + 1]
    groups = {store.session(r.on[0].session).group for r in proof.runs}
    assert len(groups) == 2  # each run has its own snapshots
    assert len(store.sessions(limit=100)) == 2 * 2 * 2


def test_a_proof_without_a_store_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMLEARN_STORE", raising=False)
    cfg = LearningRunConfig(sessions=3, episodes=2, analyze_every=2, trials=2, last=1, runs=2)
    proof = run_proof(load_scenario("troubleshooting"), None, cfg)
    assert [len(r.on) for r in proof.runs] == [3, 3]
    assert proof.runs[0].model is not None  # the analysis ran, in memory
    assert list(tmp_path.iterdir()) == []
    data = json.loads(json.dumps(proof.to_dict(), allow_nan=False))
    assert data["summary"]["runs"] == 2 and len(data["runs"]) == 2
    assert learning_html(proof).render().count("data:image/png") == 1


def test_learning_needs_rule_workers() -> None:
    sc = load_scenario("troubleshooting").override(workers={"kind": "llm"})
    with pytest.raises(ConfigError, match="rule workers"):
        run_proof(sc, None, LearningRunConfig(sessions=1, episodes=1, last=1, runs=1))


# -- the statistics over runs --------------------------------------------------------------
def _side(episodes: int, successes: int, actions: int, solved_actions: int) -> SideFigures:
    return SideFigures(episodes, successes, actions, solved_actions)


def _run(r: int, on: SideFigures, off: SideFigures, fewer: float = 5.0) -> RunFigures:
    return RunFigures(r, 10_000 + 200 * r, 7 + r, on, off, 10, fewer)


def test_summary_intervals_are_t_intervals_over_the_runs() -> None:
    figs = [_run(0, _side(50, 50, 1000, 1000), _side(50, 30, 1800, 1200), 4.0),
            _run(1, _side(50, 45, 1100, 990), _side(50, 35, 1750, 1400), 6.0),
            _run(2, _side(50, 48, 1050, 1000), _side(50, 0, 2500, 0), math.nan),
            _run(3, _side(50, 49, 990, 980), _side(50, 25, 2000, 1000), 9.0),
            _run(4, _side(50, 50, 1010, 1010), _side(50, 40, 1600, 1400), 2.0)]
    s = summarize_runs(figs)
    gains = [f.on.success_rate - f.off.success_rate for f in figs]
    ref = summarize(gains)
    assert s.runs == 5 and s.success_gain.n == 5
    assert (s.success_gain.mean, s.success_gain.low, s.success_gain.high) == pytest.approx(
        (ref.mean, ref.ci_low, ref.ci_high))
    half = 2.7764451 * ref.std / math.sqrt(5)  # t(0.975, 4 df)
    assert s.success_gain.high - s.success_gain.mean == pytest.approx(half, rel=1e-6)
    # run 2's off side solved nothing: it has no actions per solved task and is left out
    assert s.actions_per_solve_off.n == 4 and s.actions_saved.n == 4
    saved = [1800 / 30 - 1000 / 50, 1750 / 35 - 1100 / 45, 2000 / 25 - 990 / 49,
             1600 / 40 - 1010 / 50]
    assert s.actions_saved.mean == pytest.approx(sum(saved) / 4)
    assert s.paired.n == 4 and s.paired_tasks == 50
    assert s.verdict is Verdict.CLEARLY_BETTER


def test_one_run_gives_no_interval_and_no_verdict() -> None:
    s = summarize_runs([_run(0, _side(50, 50, 1000, 1000), _side(50, 10, 3000, 400))])
    assert s.verdict is Verdict.NO_VERDICT and math.isnan(s.success_gain.low)
    assert not Interval.over([0.5]).above_zero


_bounds = st.floats(-100, 100, allow_nan=False)


@st.composite
def _intervals(draw: st.DrawFn) -> Interval:
    a, b = sorted((draw(_bounds), draw(_bounds)))
    return Interval(draw(st.integers(2, 10)), (a + b) / 2, a, b)


@given(_intervals(), _intervals())
def test_verdict_is_the_documented_rule(gain: Interval, saved: Interval) -> None:
    judged, reason = verdict(gain, saved)
    if gain.low > 0 and saved.low > 0:
        assert judged is Verdict.CLEARLY_BETTER
    elif gain.high < 0 or saved.high < 0:
        assert judged is Verdict.CLEARLY_WORSE
    else:
        assert judged is Verdict.NOT_CLEARLY_BETTER
    assert reason
