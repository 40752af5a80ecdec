"""End to end: the default DQN solves CartPole-v1 (slow: ~20 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlearn.rl import RunConfig, Trainer

pytest.importorskip("gymnasium")


@pytest.mark.slow
def test_default_dqn_reaches_475_on_cartpole(tmp_path: Path) -> None:
    config = RunConfig(
        env_id="CartPole-v1",
        steps=50_000,
        eval_every=2_000,
        eval_episodes=10,
        checkpoint_every=0,
        runs_dir=str(tmp_path),
    )
    trainer = Trainer.start(config)
    result = trainer.run()
    trainer.close()
    assert max(r.mean_reward for r in result.evaluations) >= 475
