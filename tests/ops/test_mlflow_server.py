"""A real ``mlflow server`` on 127.0.0.1 as the tracking URI, killed in the middle of a DQN
training: the training runs to its end, the outage is reported once, and once
the server is back every buffered value arrives (nothing of the training is lost)."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlearn.ops.hooks import track_dqn
from swarmlearn.ops.tracking import Tracker, TrackingConfig

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # the server takes 10-40 s to start

mlflow = pytest.importorskip("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """``mlflow server`` in its own process group (uvicorn and a job runner are children)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> None:
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "server.log").read_text()[-3000:]
            try:
                if urllib.request.urlopen(f"{self.uri}/health", timeout=2).status == 200:
                    # the first API request of a fresh server opens its store: on a loaded
                    # machine it took longer than the tracker's request timeout (a false gap)
                    urllib.request.urlopen(f"{self.uri}/api/2.0/mlflow/experiments/get-by-name"
                                           "?experiment_name=Default", timeout=120)
                    return
            except OSError:
                time.sleep(0.25)
        raise AssertionError(f"mlflow server did not start within {timeout}s")

    def kill(self) -> None:
        """SIGKILL the server's whole process group (it was started as its leader)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    srv = MlflowServer(tmp_path, _free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def _trainer(root: Path, steps: int):  # type: ignore[no-untyped-def]
    from swarmlearn.rl import RunConfig, Trainer

    return Trainer.start(RunConfig(env_id="CartPole-v1", steps=steps, runs_dir=str(root),
                                   eval_every=steps // 4, checkpoint_every=steps // 2))


@pytest.mark.timeout(900)  # 12,000 DQN steps and two server starts: minutes at load 10
def test_server_killed_mid_run_loses_no_training(server: MlflowServer, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from mlflow.tracking import MlflowClient

    caplog.set_level(logging.WARNING, logger="swarmlearn.ops.tracking")
    steps, kill_at = 12_000, 4_000
    tracker = Tracker(TrackingConfig(uri=server.uri, flush_interval=0.2, retry_min=0.2,
                                     retry_max=1.0, request_timeout=3))
    assert tracker.wait_ready(60)
    trainer = _trainer(tmp_path / "runs", steps)
    logged: list[int] = []
    killed_at: list[float] = []
    try:
        with track_dqn(trainer, tracker=tracker) as tracked:
            tracked.every = 0.0  # every progress call, so each one can be checked

            def on_progress(p):  # type: ignore[no-untyped-def]
                tracked.on_progress(p)
                if math.isfinite(p.mean_return):  # before the first episode ends: no value
                    logged.append(p.steps)
                if p.steps >= kill_at and not killed_at:
                    server.kill()
                    killed_at.append(time.monotonic())

            result = trainer.run(on_progress=on_progress, on_eval=tracked.on_eval)
            run_id = tracked.run.run_id
    finally:
        trainer.close()
    # the training did all its steps and wrote everything it writes without MLflow
    assert not result.stopped and trainer.session.steps == steps
    assert (trainer.run_dir.path / "learning_curve.png").exists()
    assert trainer.run_dir.checkpoint_steps()
    assert killed_at and any(s > kill_at for s in logged)
    time.sleep(1.5)  # several failed retries while the server is away
    assert len(tracker.gaps) == 1 and tracker.gaps[0].ended is None
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "unreachable" in warned[0] and "training goes on" in warned[0]

    server.start()  # back (same store): the buffered values go out
    assert tracker.flush(120), "the tracker did not catch up with the server back"
    tracker.close()
    gap = tracker.gaps[0]
    assert gap.ended is not None and gap.delayed > 0 and gap.dropped == gap.unsent == 0
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "sent late" in warned[1] and "nothing lost" in warned[1]

    client = MlflowClient(server.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = [m.step for m in client.get_metric_history(run_id, "train/mean_return")]
    assert set(history) == set(logged)  # every progress point, before and after the kill
    episodes = client.get_metric_history(run_id, "episode/return")
    assert len(episodes) == trainer.session.episodes
    names = {f.path for f in client.list_artifacts(run_id)}
    assert {"config.json", "learning_curve.png", "train_episodes.jsonl"} <= names


def test_server_gone_for_good_is_reported_once_at_the_end(
        server: MlflowServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="swarmlearn.ops.tracking")
    tracker = Tracker(TrackingConfig(uri=server.uri, flush_interval=0.2, retry_min=0.2,
                                     retry_max=0.5, request_timeout=3, close_timeout=2))
    assert tracker.wait_ready(60)
    trainer = _trainer(tmp_path / "runs", 6_000)
    try:
        with track_dqn(trainer, tracker=tracker) as tracked:
            def on_progress(p):  # type: ignore[no-untyped-def]
                tracked.on_progress(p)
                if p.steps >= 2_000:
                    server.kill()

            trainer.run(on_progress=on_progress, on_eval=tracked.on_eval)
    finally:
        trainer.close()
    assert trainer.session.steps == 6_000
    tracker.close()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "unreachable" in warned[0]
    assert "tracker closed before it came back" in warned[1] and "not tracked" in warned[1]
    assert tracker.gaps[0].unsent > 0
