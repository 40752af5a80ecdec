"""``swarmlearn rl`` train / eval / resume through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmlearn.errors import ConfigError
from swarmlearn.rl import RunDir, rl_app

needs_gym = pytest.mark.usefixtures("gym")

SMALL = {
    "eval_every": 500,
    "eval_episodes": 3,
    "checkpoint_every": 500,
    "dqn": {"hidden": [32], "learning_starts": 100, "train_freq": 32, "gradient_steps": 4},
}


def _only_run(root: Path) -> Path:
    runs = [p for p in root.glob("*/*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@needs_gym
def test_train_eval_resume(tmp_path: Path) -> None:
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    runner = CliRunner()
    result = runner.invoke(
        rl_app,
        [
            "train",
            "CartPole-v1",
            "--steps",
            "1000",
            "--config",
            str(config),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    run = _only_run(tmp_path / "runs")
    assert (run / "learning_curve.png").stat().st_size > 1000
    meta = RunDir.open(run).metadata
    assert meta.status == "finished" and meta.steps == 1000 and meta.eval_episodes == 6

    result = runner.invoke(rl_app, ["eval", str(run), "--episodes", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "eval_best.json").read_text())["n_episodes"] == 4

    result = runner.invoke(rl_app, ["resume", str(run), "--steps", "1500"])
    assert result.exit_code == 0, result.output
    assert RunDir.open(run).metadata.steps == 1500


@needs_gym
def test_toml_config_and_bad_fields(tmp_path: Path) -> None:
    good = tmp_path / "c.toml"
    good.write_text("eval_every = 0\n[dqn]\nhidden = [8]\nlearning_starts = 50\n")
    result = CliRunner().invoke(
        rl_app,
        [
            "train",
            "CartPole-v1",
            "--steps",
            "100",
            "--config",
            str(good),
            "--runs-dir",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[dqn]\ngama = 0.9\n")
    result = CliRunner().invoke(
        rl_app,
        [
            "train",
            "CartPole-v1",
            "--steps",
            "100",
            "--config",
            str(bad),
            "--runs-dir",
            str(tmp_path / "r"),
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert result.exception.field == "dqn.gama"


def test_first_ctrl_c_asks_to_stop_the_second_aborts() -> None:
    import os
    import signal

    from swarmlearn.rl._cli import _graceful_interrupt

    before = signal.getsignal(signal.SIGINT)
    with _graceful_interrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


@needs_gym
def test_unknown_env_is_a_config_error_and_leaves_no_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        rl_app, ["train", "NoSuchEnv-v0", "--steps", "10", "--runs-dir", str(tmp_path / "r")]
    )
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "r").exists()
