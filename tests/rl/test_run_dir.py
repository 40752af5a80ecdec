"""Run directories: layout, counts, checkpoints kept K, latest/best, and write errors surfacing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from swarmlearn.errors import ArtifactError, ConfigError, TrainingError
from swarmlearn.rl import EpisodeLog, EpisodeRecord, EpisodeStatus, RunDir
from swarmlearn.rl._checkpoint import join_state, split_state


def _record(i: int) -> EpisodeRecord:
    return EpisodeRecord(
        index=i,
        step=10 * i,
        total_reward=float(i),
        length=10,
        status=EpisodeStatus.TRUNCATED,
        extras={"epsilon": 0.5},
    )


def test_layout_and_metadata(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "cart", "v2", config={"lr": 0.1}, info={"env_id": "X"})
    assert run.path.parent == tmp_path / "cart" / "v2"
    assert json.loads((run.path / "config.json").read_text()) == {"lr": 0.1}
    meta = json.loads((run.path / "metadata.json").read_text())
    assert meta["format_version"] == 1 and meta["status"] == "running" and meta["steps"] == 0
    again = RunDir.create(tmp_path, "cart", "v2", config={})
    assert again.path != run.path  # same second: a suffix, never a clash
    assert RunDir.open(run.path).metadata.info == {"env_id": "X"}


def test_unsafe_names_are_config_errors(tmp_path: Path) -> None:
    for bad in ("../up", "", ".hidden", "a/b"):
        with pytest.raises(ConfigError):
            RunDir.create(tmp_path, bad, config={})


def test_episode_logs_append_read_and_truncate(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    for i in range(5):
        run.append_episode(EpisodeLog.TRAIN, _record(i))
    run.append_episode(EpisodeLog.EVAL, _record(0))
    assert [r.index for r in run.read_episodes(EpisodeLog.TRAIN)] == [0, 1, 2, 3, 4]
    run.truncate_episodes(EpisodeLog.TRAIN, 2)
    run.append_episode(EpisodeLog.TRAIN, _record(9))
    assert [r.index for r in run.read_episodes(EpisodeLog.TRAIN)] == [0, 1, 9]
    assert run.read_episodes(EpisodeLog.EVAL) == [_record(0)]
    line = run.log_path(EpisodeLog.TRAIN).read_text().splitlines()[0]
    assert json.loads(line)["status"] == "truncated"


def test_checkpoints_keep_k_latest_and_best(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    for step in (100, 200, 300, 400):
        run.save_checkpoint(step, {"w": np.full(3, step, np.float32), "step": step}, keep=2)
    assert run.checkpoint_steps() == [300, 400]
    assert run.latest_step() == 400
    assert run.metadata.checkpoints == (300, 400)
    state = run.load_checkpoint()
    assert state["step"] == 400 and state["w"].dtype == np.float32
    assert run.best() is None
    run.save_best(12.5, 300, {"w": np.zeros(1)})
    assert run.best() == (12.5, 300) and RunDir.open(run.path).metadata.best_score == 12.5
    run.drop_checkpoints_after(300)
    assert run.checkpoint_steps() == [300]
    with pytest.raises(ArtifactError):
        run.load_checkpoint(999)


def test_state_split_and_join_round_trip_without_pickle() -> None:
    tree = {"a": np.arange(3), "b": {"c": [1, np.float32(2.5), {"d": np.ones((2, 2))}]}, "e": None}
    meta, arrays = split_state(tree)
    json.dumps(meta)  # plain JSON
    back = join_state(meta, arrays)
    np.testing.assert_array_equal(back["b"]["c"][2]["d"], np.ones((2, 2)))
    assert back["b"]["c"][1] == 2.5 and back["e"] is None
    with pytest.raises(TypeError):
        split_state({"x": object()})


# ---- every write error surfaces as TrainingError ------------------------------------------


def test_create_under_a_file_fails_loudly(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("not a directory")
    with pytest.raises(TrainingError, match="cannot create run directory"):
        RunDir.create(blocker, "r", config={})


def test_episode_log_write_error_surfaces(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    run.log_path(EpisodeLog.TRAIN).mkdir()  # the log path is taken by a directory
    with pytest.raises(TrainingError, match=r"train_episodes\.jsonl"):
        run.append_episode(EpisodeLog.TRAIN, _record(0))


def test_checkpoint_write_error_surfaces(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    (run.path / "checkpoints").rmdir()
    (run.path / "checkpoints").write_text("in the way")
    with pytest.raises(TrainingError, match="cannot write checkpoint"):
        run.save_checkpoint(1, {"w": np.zeros(2)}, keep=1)


def test_metadata_write_error_surfaces(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    (run.path / "metadata.json").unlink()
    (run.path / "metadata.json").mkdir()
    with pytest.raises(TrainingError, match=r"metadata\.json"):
        run.update(steps=5)


def test_unserialisable_state_is_a_training_error(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "r", config={})
    with pytest.raises(TrainingError):
        run.save_checkpoint(1, {"x": object()}, keep=1)


def test_opening_something_else_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a run directory"):
        RunDir.open(tmp_path)
    (tmp_path / "metadata.json").write_text('{"format_version": 99}')
    with pytest.raises(ArtifactError, match="format"):
        RunDir.open(tmp_path)
