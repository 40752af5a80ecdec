"""Evaluation over seeds and variants, and its reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from swarmlearn.cli import main
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


# -- eval --learning through the CLI -------------------------------------------------------
def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["swarmlearn", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no $SWARMLEARN_STORE: the default store would land here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMLEARN_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "220")
    return tmp_path


TINY = ("--sessions", "2", "--episodes", "2", "-n", "2")


def test_eval_learning_no_store_writes_nothing(
    empty_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(monkeypatch, capsys, "eval", "troubleshooting", "--learning",
                          "--variant", "heldout", "--no-store", *TINY, "--policy", "ucb1",
                          "-o", "r.json")
    assert code == 0, err
    assert [p.name for p in empty_cwd.iterdir()] == ["r.json"]  # only what was asked for
    assert "2 independent run(s)" in out and "over the 2 run(s)" in out
    assert "learning on is" in out and "10000–10003" in out and "10004–10007" in out
    data = json.loads((empty_cwd / "r.json").read_text())
    assert data["config"]["strategy"] == "ucb1" and data["config"]["runs"] == 2
    assert [r["worker_seed"] for r in data["runs"]] == [7, 8]


def test_eval_learning_records_every_run_in_the_store(
    empty_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(monkeypatch, capsys, "eval", "troubleshooting", "--learning", *TINY,
                        "--store", "s.db")
    assert code == 0, err
    kinds = [s.kind for s in open_store("s.db").sessions(limit=100)]
    assert sorted(kinds) == ["learning-off"] * 4 + ["learning-on"] * 4  # 2 runs × 2 sessions


@pytest.mark.parametrize("args", [
    ("--attempts", "3"),
    ("--policy", "random"),
    ("--policy", "ucb1", "--strategy", "greedy"),
    ("--workers", "llm"),
    ("--llm-url", "http://127.0.0.1:9"),
    ("--llm-model", "m.gguf"),
    ("--all-variants",),
    ("--variant", "hard", "--variant", "strict"),
    ("--store", "x.db", "--no-store"),
    ("-n", "0"),
    ("--episodes", "0"),
])
def test_eval_learning_refuses_what_it_cannot_use_before_any_work(
    args: tuple[str, ...], empty_cwd: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(monkeypatch, capsys, "eval", "troubleshooting", "--learning", *args)
    assert code != 0 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert list(empty_cwd.iterdir()) == []  # refused before a store or anything else


def test_learning_options_need_learning(
    empty_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("--sessions", "--episodes", "--strategy"):
        code, _, err = _cli(monkeypatch, capsys, "eval", "troubleshooting", "--no-store",
                            option, "3" if option != "--strategy" else "ucb1")
        assert code != 0 and f"{option}: only with --learning" in err
