"""The commands with ``--tracking-uri``: run, eval and eval --learning become MLflow runs with
their params, per-episode / per-session metrics, session ids and report files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses that import MLflow


def _cli(*args: str, cwd: Path) -> None:
    got = subprocess.run([sys.executable, "-m", "swarmlearn.cli", *args], cwd=cwd,
                         capture_output=True, timeout=300)
    assert got.returncode == 0, got.stderr.decode()[-3000:]


def test_run_eval_and_learning_are_tracked(tmp_path: Path, mlflow_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    store = str(tmp_path / "s.db")
    _cli("--tracking-uri", mlflow_uri, "run", "troubleshooting", "-n", "6", "--store", store,
         cwd=tmp_path)
    _cli("--tracking-uri", mlflow_uri, "eval", "troubleshooting", "-n", "5", "--store", store,
         "--html", str(tmp_path / "eval.html"), cwd=tmp_path)
    _cli("--tracking-uri", mlflow_uri, "eval", "troubleshooting", "--learning", "-n", "1",
         "--sessions", "3", "--episodes", "4", "--store", store, "-o",
         str(tmp_path / "learn.json"), cwd=tmp_path)
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("swarmlearn")
    runs = {}
    for r in client.search_runs([exp.experiment_id]):
        runs.setdefault(r.info.run_name, r)
    run, ev, learn = runs["run"], runs["eval"], runs["eval.learning"]
    for r in (run, ev, learn):
        assert r.info.status == "FINISHED"
        assert r.data.tags["swarmlearn.scenario"] == "troubleshooting"
    assert len(client.get_metric_history(run.info.run_id, "episode/success")) == 6
    assert run.data.metrics["episodes"] == 6 and run.data.params["name"] == "troubleshooting"
    assert run.data.tags["swarmlearn.sessions"]
    assert 0 <= ev.data.metrics["base/success_rate"] <= 1
    assert [f.path for f in client.list_artifacts(ev.info.run_id)] == ["eval.html"]
    on = client.get_metric_history(learn.info.run_id, "learning/on/run0/success_rate")
    assert sorted(m.step for m in on) == [0, 1, 2]
    assert "learn.json" in [f.path for f in client.list_artifacts(learn.info.run_id)]
