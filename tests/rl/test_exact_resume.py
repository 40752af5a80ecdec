"""A run stopped at step 1,000 and resumed ends exactly where an unstopped run does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmlearn.rl import DQNConfig, EpisodeLog, RunConfig, Trainer

pytest.importorskip("gymnasium")


def _config(tmp_path: Path, name: str, **dqn: Any) -> RunConfig:
    return RunConfig(
        env_id="CartPole-v1",
        steps=2000,
        n_envs=2,
        seed=3,
        eval_every=500,
        eval_episodes=3,
        checkpoint_every=1000,
        runs_dir=str(tmp_path),
        name=name,
        dqn=DQNConfig(
            hidden=(32, 32),
            batch_size=32,
            buffer_size=5000,
            learning_starts=200,
            train_freq=16,
            gradient_steps=4,
            target_update_interval=50,
            seed=7,
            **dqn,
        ),
    )


def _final(trainer: Trainer) -> dict[str, Any]:
    agent, run = trainer.agent, trainer.run_dir
    return {
        "params": agent.net.params.copy(),
        "target": agent.target_params.copy(),
        "adam": agent.state_dict()["adam"],
        "replay": agent.buffer.state_dict(),
        "rng": agent.state_dict()["rng"],
        "steps": (agent.steps, agent.n_updates, trainer.session.steps, trainer.session.episodes),
        "train": [r.to_dict() for r in run.read_episodes(EpisodeLog.TRAIN)],
        "eval": [r.to_dict() for r in run.read_episodes(EpisodeLog.EVAL)],
        "best": run.best(),
        "meta": (run.metadata.steps, run.metadata.train_episodes, run.metadata.eval_episodes),
    }


def _stop_by_crash(trainer: Trainer) -> int:
    trainer.loop.run(until=1300)  # dies at 1,300: the last checkpoint is the one at 1,000
    trainer.run_dir.close()
    return 1000


def _stop_gracefully(trainer: Trainer) -> int:
    """Ctrl-C in the CLI: the loop stops between steps and checkpoints where it stands."""
    result = trainer.run(should_stop=lambda: trainer.session.steps >= 1100)
    assert result.stopped and trainer.run_dir.metadata.status == "interrupted"
    return 1100


@pytest.mark.parametrize("stop", [_stop_by_crash, _stop_gracefully], ids=["crash", "graceful"])
@pytest.mark.parametrize(
    "variant",
    [
        {"double": True, "dueling": True, "n_step": 1},
        {"prioritized": True, "n_step": 3, "double": False, "tau": 0.5},
    ],
    ids=["double-dueling-uniform", "per-nstep-polyak"],
)
def test_stop_at_1000_resume_equals_unstopped_run(
    tmp_path: Path, variant: dict, stop: Callable[[Trainer], int]
) -> None:
    unstopped = Trainer.start(_config(tmp_path, "unstopped", **variant))
    unstopped.run()
    expected = _final(unstopped)
    unstopped.close()

    stopped = Trainer.start(_config(tmp_path, "stopped", **variant))
    stopped_at = stop(stopped)
    path = stopped.run_dir.path
    stopped.close()

    resumed = Trainer.resume(path)
    assert resumed.session.steps == stopped_at
    resumed.run()
    got = _final(resumed)
    resumed.close()

    np.testing.assert_allclose(got["params"], expected["params"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["target"], expected["target"], rtol=1e-6, atol=1e-7)
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(got["adam"][key], expected["adam"][key], rtol=1e-6, atol=1e-9)
    assert got["adam"]["step"] == expected["adam"]["step"]
    for key in ("obs", "next_obs", "action", "reward", "discount"):
        np.testing.assert_array_equal(got["replay"][key], expected["replay"][key])
    assert got["rng"] == expected["rng"]
    for key in ("steps", "train", "eval", "best", "meta"):
        assert got[key] == expected[key], key
    assert expected["meta"][1] == len(expected["train"]) > 0  # counts kept true
