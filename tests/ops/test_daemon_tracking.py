"""The daemon's level runs in MLflow (a run each, FINISHED or FAILED, with the version, the
gate's numbers and the seconds) and its promotions in the registry, without the daemon
knowing: both are lifecycle observers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmlearn._daemon_config import daemon_config_from_mapping
from swarmlearn.core.scenario import load_scenario
from swarmlearn.daemon import LearningDaemon
from swarmlearn.lifecycle import add_observer
from swarmlearn.ops.hooks import LevelRunTracker
from swarmlearn.ops.registry import MirrorObserver, model_name
from swarmlearn.ops.tracking import TrackingConfig
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore

pytestmark = pytest.mark.slow  # trainer child processes and an MLflow store

TESTS = str(Path(__file__).parents[1])
SCENARIO = "examples/troubleshooting.toml"


@pytest.fixture(autouse=True)
def _fakes_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(TESTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))


def test_daemon_level_runs_are_tracked_and_mirrored(tmp_path: Path, mlflow_uri: str,
                                                    mlflow_artifacts: str) -> None:
    from mlflow.tracking import MlflowClient

    url = f"sqlite:///{tmp_path}/store.db"
    sc = load_scenario(SCENARIO, variant="heldout")
    with SqlStore(url) as st:
        for i in range(2):
            run_session(sc, store=st, seeds=list(range(10_000 + 10 * i, 10_010 + 10 * i)))
    cfg = daemon_config_from_mapping({
        "daemon": {"scenario": SCENARIO, "variant": "heldout", "run_dir": str(tmp_path / "run"),
                   "poll_s": 0.1, "gate_tasks": 30, "cpu_share": 1.0},
        "levels": {"good": {"kind": "daemon_fakes:build", "quality": 0.9,
                            "trigger": "count >= 5"},
                   "broken": {"kind": "daemon_fakes:build", "mode": "raise",
                              "trigger": "count >= 5", "name": "broken_kind"}}})
    tracking = TrackingConfig(uri=mlflow_uri, artifacts=mlflow_artifacts,
                              experiment="daemon-test", flush_interval=0.1)
    levels = LevelRunTracker(tracking)
    mirror = MirrorObserver(tracking_uri=mlflow_uri, artifact_location=mlflow_artifacts)
    removers = [add_observer(levels), add_observer(mirror)]
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once() == 2
    finally:
        daemon.close()
        for remove in removers:
            remove()
        levels.close()
        assert mirror.flush(60)
        mirror.close()
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("daemon-test")
    runs = {r.data.tags["swarmlearn.level"]: r for r in client.search_runs([exp.experiment_id])}
    good, broken = runs["good"], runs["broken"]
    assert good.info.status == "FINISHED" and broken.info.status == "FAILED"
    assert good.data.tags["swarmlearn.decision"] == "promote"
    assert good.data.metrics["gate/p_value"] < 0.05 and good.data.metrics["seconds"] > 0
    assert "new episodes" in good.data.params["trigger.reason"]
    assert "exploded" in broken.data.tags["swarmlearn.failure"]
    champion = client.get_model_version_by_alias(model_name("fake_kind", sc.label), "champion")
    assert champion.tags["swarmlearn.artifact_id"] == good.data.tags["swarmlearn.artifact_id"]
