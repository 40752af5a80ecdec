"""TrainingSession with a fake agent: counting, logs, best score, eval report, checkpoints."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlearn.errors import TrainingError
from swarmlearn.rl import (
    ActMode,
    EpisodeLog,
    EpisodeStatus,
    Experience,
    RollingStats,
    RunDir,
    SessionConfig,
    StateTree,
    TrainingSession,
)


class FakeAgent:
    """Remembers how many steps it saw; its state is that count."""

    def __init__(self) -> None:
        self.seen = 0
        self.starts: list[int] = []

    def act(self, obs: np.ndarray, mode: ActMode) -> np.ndarray:
        return np.zeros(len(obs), np.int64)

    def observe(self, experience: Experience) -> None:
        self.seen += experience.n

    def on_episode_start(self, env_index: int) -> None:
        self.starts.append(env_index)

    def metrics(self) -> Mapping[str, float]:
        return {"epsilon": 0.25}

    def state_dict(self) -> StateTree:
        return {"seen": self.seen, "w": np.full(2, float(self.seen))}

    def load_state_dict(self, state: StateTree) -> None:
        self.seen = int(state["seen"])


class Counter:
    """A registered part: e.g. the loop's environments."""

    def __init__(self) -> None:
        self.value = 0

    def state_dict(self) -> StateTree:
        return {"value": self.value}

    def load_state_dict(self, state: StateTree) -> None:
        self.value = int(state["value"])


def _exp(n: int = 1) -> Experience:
    z = np.zeros((n, 1), np.float32)
    no = np.zeros(n, bool)
    return Experience(z, np.zeros(n, np.int64), np.zeros(n, np.float32), z, no, no)


def _session(tmp_path: Path | None, **kw: int) -> TrainingSession:
    run = RunDir.create(tmp_path, "r", config={}) if tmp_path is not None else None
    return TrainingSession(FakeAgent(), SessionConfig(max_steps=kw.pop("max_steps", 10), **kw), run)


def test_observe_feeds_the_agent_and_counts_vector_steps() -> None:
    session = _session(None)
    session.on_episode_start(3)
    for _ in range(3):
        session.observe(_exp(4))
    assert session.steps == 12 and session.agent.seen == 12  # type: ignore[attr-defined]
    assert session.agent.starts == [3]  # type: ignore[attr-defined]
    assert session.is_done


def test_episodes_are_logged_with_agent_metrics_and_stats(tmp_path: Path) -> None:
    session = _session(tmp_path)
    session.observe(_exp(5))
    session.on_episode(10.0, 5, EpisodeStatus.TERMINATED, {"loss": 0.5})
    session.on_episode(20.0, 7, EpisodeStatus.TRUNCATED)
    assert session.train_stats.mean == 15.0 and session.train_stats.last == 20.0
    assert session.run_dir is not None
    logged = session.run_dir.read_episodes(EpisodeLog.TRAIN)
    assert [r.total_reward for r in logged] == [10.0, 20.0]
    assert logged[0].extras == {"epsilon": 0.25, "loss": 0.5} and logged[0].step == 5
    assert logged[1].status is EpisodeStatus.TRUNCATED


def test_eval_report_is_built_from_eval_episodes_not_training_ones() -> None:
    session = _session(None)
    with pytest.raises(TrainingError, match="no evaluation episodes"):
        session.eval_report(5)
    for _ in range(50):
        session.on_episode(1.0, 1, EpisodeStatus.TERMINATED)
    for r in (100.0, 200.0, 300.0):
        session.on_eval_episode(r, int(r), EpisodeStatus.TRUNCATED)
    report = session.eval_report(2)
    assert report.n_episodes == 2 and report.mean_reward == 250.0
    assert report.std_reward == 50.0 and report.truncated == 2 and report.mean_length == 250.0
    assert session.eval_report(10).n_episodes == 3


def test_best_score_is_persisted_across_restarts(tmp_path: Path) -> None:
    first = _session(tmp_path)
    assert first.maybe_save_best(10.0)
    assert not first.maybe_save_best(9.0)
    assert first.run_dir is not None
    path = first.run_dir.path
    first.close()
    second = TrainingSession(FakeAgent(), SessionConfig(max_steps=10), RunDir.open(path))
    assert second.best_score == 10.0
    assert not second.maybe_save_best(5.0)
    assert second.maybe_save_best(11.0)
    assert RunDir.open(path).best() == (11.0, 0)
    assert RunDir.open(path).load_best()["agent"]["seen"] == 0


def test_checkpoints_every_n_steps_keep_k_and_restore(tmp_path: Path) -> None:
    session = _session(tmp_path, max_steps=100, checkpoint_every=10, keep_checkpoints=2)
    counter = Counter()
    session.register("counter", counter)
    for step in range(1, 46):
        session.observe(_exp())
        counter.value = step
        if step % 7 == 0:
            session.on_episode(float(step), 7, EpisodeStatus.TERMINATED)
        if session.checkpoint_due:
            session.checkpoint()
    run = session.run_dir
    assert run is not None and run.checkpoint_steps() == [30, 40]
    assert run.metadata.steps == 40 and run.metadata.train_episodes == 5
    # a new process restores step 40: agent, session counts, the part; the log is cut back
    restored = TrainingSession(FakeAgent(), session.config, RunDir.open(run.path))
    counter2 = Counter()
    restored.register("counter", counter2)
    assert restored.restore() == 40
    assert restored.agent.seen == 40 and counter2.value == 40  # type: ignore[attr-defined]
    assert restored.episodes == 5 and restored.train_stats.last == 35.0
    assert len(run.read_episodes(EpisodeLog.TRAIN)) == 5  # the episode at step 42 is gone


def test_checkpoint_without_a_run_directory_is_an_error() -> None:
    session = _session(None, checkpoint_every=1)
    session.observe(_exp())
    assert not session.checkpoint_due
    with pytest.raises(TrainingError):
        session.checkpoint()


def test_write_errors_surface_through_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path)
    assert session.run_dir is not None
    session.run_dir.log_path(EpisodeLog.EVAL).mkdir()
    with pytest.raises(TrainingError):
        session.on_eval_episode(1.0, 1, EpisodeStatus.TERMINATED)


def test_steps_per_sec_uses_the_clock() -> None:
    now = [0.0]
    session = TrainingSession(FakeAgent(), SessionConfig(max_steps=10**6), clock=lambda: now[0])
    assert math.isnan(session.steps_per_sec)
    for _ in range(10):
        now[0] += 0.5
        session.observe(_exp(100))
    assert session.steps_per_sec == pytest.approx(200.0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(1, 50))
def test_rolling_stats_match_numpy(values: list[float], window: int) -> None:
    stats = RollingStats(window)
    for v in values:
        stats.add(v)
    arr, tail = np.array(values), np.array(values[-window:])
    assert stats.count == len(values) and stats.last == values[-1]
    assert stats.mean == pytest.approx(arr.mean(), rel=1e-9, abs=1e-6)
    assert stats.std == pytest.approx(arr.std(), rel=1e-6, abs=1e-3)
    assert (stats.min, stats.max) == (arr.min(), arr.max())
    assert stats.rolling_mean == pytest.approx(tail.mean(), rel=1e-9, abs=1e-6)
    assert stats.rolling_std == pytest.approx(tail.std(), rel=1e-6, abs=1e-3)
    copy = RollingStats(window)
    copy.load_state_dict(stats.state_dict())
    assert copy.summary() == stats.summary()
