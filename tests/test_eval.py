"""Evaluation over seeds and variants, and its reports."""

from __future__ import annotations

import json
from pathlib import Path

from swarmlearn.core.scenario import load_scenario
from swarmlearn.eval import evaluate
from swarmlearn.ops.report import eval_html
from swarmlearn.store import open_store


def test_evaluate_variants_with_attempts(tmp_path: Path) -> None:
    sc = load_scenario("troubleshooting").override(workers={"policy": "random"})
    st = open_store(f"sqlite:///{tmp_path}/e.db")
    seen: list[int] = []
    report = evaluate(
        sc,
        runs=8,
        seed=5,
        attempts=3,
        variants=["", "hard"],
        store=st,
        on_episode=lambda e: seen.append(e.seed),
    )
    assert len(seen) == 8 * 3 * 2
    base, _hard = report.variants
    assert base.runs == 8 and base.attempts == 3 and len(base.episodes) == 24
    assert set(base.pass_at) == {1, 3}
    assert base.pass_at[3] >= base.pass_at[1]
    assert abs(base.pass_at[1] - base.success_rate) < 1e-9
    assert base.success_ci[0] <= base.success_rate <= base.success_ci[1]
    assert base.actions.ci_low <= base.actions.mean <= base.actions.ci_high
    assert sorted({e["task_seed"] for e in base.episodes}) == list(range(5, 13))
    assert report.comparisons[0]["variant"] == "troubleshooting[hard]"
    assert len(st.sessions(kind="eval")) == 6
    # same seeds → same results: evaluation is reproducible
    again = evaluate(sc, runs=8, seed=5, attempts=3, variants=["", "hard"])
    assert [e["actions"] for e in again.variants[0].episodes] == [
        e["actions"] for e in base.episodes
    ]

    out = tmp_path / "r.json"
    report.write_json(out)
    data = json.loads(out.read_text())
    assert data["format_version"] == 1 and len(data["variants"]) == 2
    html = eval_html(report).write(tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "hard" in html
