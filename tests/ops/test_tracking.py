"""ops.tracking: buffered MLflow writes, outages reported once, config from the environment."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.ops.tracking import (
    DEFAULT_URI,
    Tracker,
    TrackingConfig,
    cpu_spacing,
    flatten,
    track,
)

pytest.importorskip("mlflow")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "swarmlearn.ops.tracking" and r.levelno >= logging.WARNING]


def test_config_from_env() -> None:
    assert TrackingConfig.from_env({}) is None
    assert TrackingConfig.from_env({"SWARMLEARN_TRACKING": "0",
                                    "MLFLOW_TRACKING_URI": "http://x"}) is None
    on = TrackingConfig.from_env({"SWARMLEARN_TRACKING": "1"})
    assert on is not None and on.uri == ""
    uri = TrackingConfig.from_env({"SWARMLEARN_TRACKING": "http://127.0.0.1:5000"})
    assert uri is not None and uri.resolved_uri == "http://127.0.0.1:5000"
    assert TrackingConfig.from_env({"MLFLOW_TRACKING_URI": "http://h:1"}) is not None


def test_default_uri_and_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = TrackingConfig()
    assert cfg.resolved_uri == DEFAULT_URI
    assert cfg.artifact_location is not None
    assert cfg.artifact_location.endswith(".swarmlearn/mlruns")
    assert TrackingConfig(uri="http://h:1").artifact_location is None


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="flush_interval"):
        TrackingConfig(flush_interval=0)
    with pytest.raises(ConfigError, match="max_buffered"):
        TrackingConfig(max_buffered=0)


def test_the_writer_keeps_to_its_cpu_budget() -> None:
    cfg = TrackingConfig(cpu_budget=0.005)
    assert cpu_spacing(cfg, 0.010) == pytest.approx(2.0)  # 10 ms of sqlite: 0.5% of 2 s
    assert cpu_spacing(TrackingConfig(cpu_budget=0.0), 1.0) == 0.0  # budget off
    with pytest.raises(ConfigError, match="cpu_budget"):
        TrackingConfig(cpu_budget=2.0)
    with pytest.raises(ConfigError, match="max_flush_interval"):
        TrackingConfig(flush_interval=10.0, max_flush_interval=5.0)


def test_an_idle_process_sends_after_max_flush_interval_and_a_flush_at_once(
        mlflow_uri: str, mlflow_artifacts: str) -> None:
    """A budget no send can meet (the process idles): periodic sends wait for
    max_flush_interval, ``flush()`` does not wait at all."""
    from mlflow.tracking import MlflowClient

    tracker = Tracker(TrackingConfig(uri=mlflow_uri, artifacts=mlflow_artifacts,
                                     flush_interval=0.05, cpu_budget=1e-6,
                                     max_flush_interval=1.5))
    run = tracker.start_run("budget")
    assert run.wait_sent(60)
    client = MlflowClient(mlflow_uri)
    run.log_metric("x", 1.0, 1)
    time.sleep(0.5)  # ten flush intervals, far less CPU than the budget asks
    assert client.get_metric_history(run.run_id, "x") == []
    deadline = time.monotonic() + 20
    while not client.get_metric_history(run.run_id, "x") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m.step for m in client.get_metric_history(run.run_id, "x")] == [1]
    run.log_metric("x", 2.0, 2)
    t0 = time.monotonic()
    assert tracker.flush(10) and time.monotonic() - t0 < 1.0
    assert len(client.get_metric_history(run.run_id, "x")) == 2
    run.end()
    tracker.close()


def test_flatten_nested_params() -> None:
    assert flatten({"a": 1, "dqn": {"lr": 0.1, "hidden": (2, 3)}, "s": "x" * 7000}) == {
        "a": "1", "dqn.lr": "0.1", "dqn.hidden": "(2, 3)", "s": "x" * 6000}


def test_tracking_off_is_a_do_nothing_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARMLEARN_TRACKING", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with track("x", params={"a": 1}) as run:
        run.log_metrics({"loss": 1.0}, 1)
        run.callback()({"step": 1, "loss": 2.0})
        assert run.run_id is None


def test_unreachable_server_never_blocks_and_is_reported_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = TrackingConfig(uri=f"http://127.0.0.1:{_closed_port()}", flush_interval=0.02,
                         retry_min=0.02, retry_max=0.05, request_timeout=2, close_timeout=0.3)
    tracker = Tracker(cfg)
    run = tracker.start_run("t", params={"a": 1})
    t0 = time.thread_time()  # CPU, not wall: the machine's load and the writer's retries
    for i in range(20_000):  # contend for the GIL, but cost this thread nothing
        run.log_metrics({"loss": 1.0 / (i + 1)}, i)
    assert time.thread_time() - t0 < 1.0  # appends only: no request in the caller's thread
    deadline = time.monotonic() + 10
    while not tracker.gaps and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # several more failed retries
    assert len(_warnings(caplog)) == 1
    assert "unreachable" in _warnings(caplog)[0] and "training goes on" in _warnings(caplog)[0]
    run.end()
    tracker.close()
    msgs = _warnings(caplog)
    assert len(tracker.gaps) == 1 and len(msgs) == 2
    assert tracker.gaps[0].unsent == 20_000
    assert "20000 metric value(s) not tracked" in msgs[1]


def test_buffer_is_bounded_and_drops_are_counted() -> None:
    cfg = TrackingConfig(uri=f"http://127.0.0.1:{_closed_port()}", flush_interval=0.02,
                         retry_min=0.02, retry_max=0.05, max_buffered=100, close_timeout=0.1)
    tracker = Tracker(cfg)
    run = tracker.start_run("t")
    deadline = time.monotonic() + 10
    while not tracker.gaps and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(250):
        run.log_metric("x", float(i), i)
    tracker.close()
    gap = tracker.gaps[0]
    assert gap.dropped == 150 and gap.unsent == 100


class _Progress(NamedTuple):
    steps: int
    loss: float
    rate: float
    name: str
    done: bool


@pytest.mark.slow
def test_metrics_params_artifacts_reach_sqlite_and_a_late_store_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store's directory is blocked by a file (an outage), then freed: every value
    logged meanwhile arrives, the gap is reported once as ended."""
    from mlflow.tracking import MlflowClient

    caplog.set_level(logging.WARNING)
    (tmp_path / "blocked").write_text("not a directory")
    uri = f"sqlite:///{tmp_path / 'blocked' / 'mlflow.db'}"
    cfg = TrackingConfig(uri=uri, artifacts=str(tmp_path / "mlruns"), flush_interval=0.05,
                         retry_min=0.05, retry_max=0.2)
    tracker = Tracker(cfg)
    run = tracker.start_run("r", params={"dqn": {"lr": 0.5}}, tags={"swarmlearn.session": 7})
    cb = run.callback(step="steps", prefix="train/")
    for i in range(1500):
        cb(_Progress(i, 1.0 / (i + 1), 3.0, "n", False))
    artifact = tmp_path / "report.html"
    artifact.write_text("<html></html>")
    run.log_artifact(artifact)
    deadline = time.monotonic() + 10
    while not tracker.gaps and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tracker.gaps and tracker.gaps[0].ended is None
    (tmp_path / "blocked").unlink()
    (tmp_path / "blocked").mkdir()
    run.end()
    assert tracker.flush(120)
    tracker.close()
    gap = tracker.gaps[0]
    assert gap.ended is not None and gap.delayed == 3000 and gap.dropped == 0
    msgs = _warnings(caplog)
    assert len(msgs) == 2 and "sent late" in msgs[1] and "nothing lost" in msgs[1]
    client = MlflowClient(uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"dqn.lr": "0.5"}
    assert got.data.tags["swarmlearn.session"] == "7"
    history = client.get_metric_history(run.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1500))
    assert "train/name" not in got.data.metrics and "train/done" not in got.data.metrics
    assert [f.path for f in client.list_artifacts(run.run_id)] == ["report.html"]


@pytest.mark.slow
def test_a_refused_write_is_dropped_not_an_outage(mlflow_uri: str, mlflow_artifacts: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from mlflow.tracking import MlflowClient

    caplog.set_level(logging.WARNING)
    tracker = Tracker(TrackingConfig(uri=mlflow_uri, artifacts=mlflow_artifacts,
                                     flush_interval=0.05))
    run = tracker.start_run("refused", params={"a": 1})
    assert tracker.flush(60)
    run.log_params({"a": 2})  # MLflow never changes a param
    run.log_metric("after", 1.0, 3)
    run.end()
    assert tracker.flush(60)
    tracker.close()
    assert tracker.gaps == []
    assert any("refused params" in m for m in _warnings(caplog))
    got = MlflowClient(mlflow_uri).get_run(run.run_id)
    assert got.data.params == {"a": "1"} and got.data.metrics == {"after": 1.0}
    assert got.info.status == "FINISHED"


@pytest.mark.slow
def test_versions_produced_in_a_tracked_command_are_linked_to_its_run(
        tmp_path: Path, mlflow_uri: str, mlflow_artifacts: str) -> None:
    from mlflow.tracking import MlflowClient

    from swarmlearn.lifecycle import Lifecycle, Lineage, Produced, add_observer
    from swarmlearn.ops.hooks import LevelRunTracker
    from swarmlearn.store import SqlStore

    cfg = TrackingConfig(uri=mlflow_uri, artifacts=mlflow_artifacts, experiment="linked",
                         flush_interval=0.05)
    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    levels = LevelRunTracker(cfg)
    remove = add_observer(levels)
    try:
        with track("cmd", config=cfg) as run:
            life = Lifecycle(store, "profile", "p")
            for n in (1, 2):
                life.register(Produced(payload=b"{}", lineage=Lineage(
                    config={"lr": n}, metrics={"loss": 1.0 / n})))
        Lifecycle(store, "profile", "q").register(Produced(payload=b"{}"))  # no command
    finally:
        remove()
        levels.close()
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("linked")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    cmd = runs["cmd"]
    assert cmd.info.run_id == run.run_id
    assert cmd.data.params == {"profile.v1.lr": "1", "profile.v2.lr": "2"}
    assert cmd.data.tags["swarmlearn.artifact_ids"] == ",".join(
        str(v.id) for v in reversed(life.versions()))
    assert [m.value for m in client.get_metric_history(run.run_id, "lineage/profile/loss")
            ] == [1.0, 0.5]
    assert runs["produce profile/q"].data.tags["swarmlearn.kind"] == "profile"
    store.close()


def test_waiting_for_the_run_gives_up_at_once_in_an_outage() -> None:
    cfg = TrackingConfig(uri=f"http://127.0.0.1:{_closed_port()}", retry_min=0.02,
                         retry_max=0.05, request_timeout=2, close_timeout=0.1)
    tracker = Tracker(cfg)
    run = tracker.start_run("t", params={"a": 1})
    t0 = time.perf_counter()
    assert run.wait_sent(30) is False
    assert time.perf_counter() - t0 < 10 and tracker.gaps
    tracker.close()


@pytest.mark.slow
def test_the_run_exists_after_wait_sent_and_a_paused_writer_sends_nothing(
        mlflow_uri: str, mlflow_artifacts: str) -> None:
    from mlflow.tracking import MlflowClient

    tracker = Tracker(TrackingConfig(uri=mlflow_uri, artifacts=mlflow_artifacts,
                                     flush_interval=0.05))
    run = tracker.start_run("paused", params={"a": 1})
    assert run.wait_sent(60) and run.run_id is not None
    client = MlflowClient(mlflow_uri)
    assert client.get_run(run.run_id).data.params == {"a": "1"}
    tracker.pause()
    for i in range(5):
        run.log_metric("x", float(i), i)
    time.sleep(0.5)  # ten flush intervals
    assert not tracker.sending
    assert client.get_metric_history(run.run_id, "x") == []
    tracker.resume()
    assert run.wait_sent(60)
    assert [m.step for m in client.get_metric_history(run.run_id, "x")] == list(range(5))
    run.end()
    tracker.close()
    assert tracker.gaps == []
