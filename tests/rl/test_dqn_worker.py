"""A DQN trained on swarmlearn/Troubleshooting-v0 acts as a swarm worker and beats a random one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swarmlearn.core.events import EventIds
from swarmlearn.core.manager import NO_GUIDANCE
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.core.workers import RandomPolicy, RuleWorker, Worker
from swarmlearn.envs import make_env as make_swarm_env
from swarmlearn.errors import ConfigError
from swarmlearn.rl import (
    DQNConfig,
    DQNWorker,
    GreedyPolicy,
    RunConfig,
    SwarmCodec,
    SwarmEnvConfig,
    Trainer,
)

pytest.importorskip("gymnasium")

PARAMS = {"services": 3, "distractors": 1}


def _mean_outcome(make_worker: object, episodes: int = 40) -> float:
    values = []
    for seed in range(1000, 1000 + episodes):
        env = make_swarm_env("troubleshooting", PARAMS)
        with Swarm(env, [make_worker()], config=SwarmConfig(max_ticks=30)) as swarm:  # type: ignore[operator]
            values.append(swarm.run_episode(seed=seed, ids=EventIds(1)).outcome.value)
    return float(np.mean(values))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(
        env_id="swarmlearn/Troubleshooting-v0",
        steps=6000,
        eval_every=3000,
        eval_episodes=10,
        checkpoint_every=0,
        runs_dir=str(tmp_path_factory.mktemp("runs")),
        env_kwargs={"params": PARAMS, "useless_penalty": 0.05, "max_steps": 30},
        dqn=DQNConfig(
            hidden=(64, 64),
            learning_starts=500,
            train_freq=4,
            gradient_steps=1,
            target_update_interval=250,
            exploration_fraction=0.4,
            learning_rate=1e-3,
            exploration_final_eps=0.05,
            n_step=3,
            buffer_size=20_000,
            gamma=0.9,
        ),
    )
    trainer = Trainer.start(config)
    trainer.run()
    trainer.close()
    return trainer.run_dir.path


def test_trained_worker_beats_a_random_worker_in_the_swarm(trained_run: Path) -> None:
    dqn = _mean_outcome(lambda: DQNWorker.from_run(0, trained_run))
    random = _mean_outcome(lambda: RuleWorker(0, RandomPolicy(0)))
    assert dqn > 0.6 and dqn > random + 0.3, (dqn, random)


def test_worker_satisfies_the_protocol_and_picks_only_candidates(trained_run: Path) -> None:
    worker = DQNWorker.from_run(7, trained_run, checkpoint="latest")
    assert isinstance(worker, Worker) and worker.id == 7 and not worker.blocking
    env = make_swarm_env("troubleshooting", PARAMS)
    obs = env.reset(5)
    for _ in range(10):
        action = worker.decide(obs, NO_GUIDANCE)
        assert action in {c.action for c in obs.candidates}
        env.step(action)
        if env.done:
            break
        obs = env.observe()


def test_policy_that_does_not_fit_is_refused() -> None:
    codec = SwarmCodec.for_config(SwarmEnvConfig(params=PARAMS))
    from swarmlearn.rl import MLPSpec

    wrong = MLPSpec(obs_dim=codec.encoder.size + 1, hidden=(4,), n_actions=codec.layout.size)
    policy = GreedyPolicy(wrong, np.zeros(wrong.n_params, np.float32))
    with pytest.raises(ConfigError):
        DQNWorker(0, policy, codec.layout, codec.encoder)


def test_from_run_of_a_non_swarm_run_is_refused(tmp_path: Path) -> None:
    config = RunConfig(
        env_id="CartPole-v1",
        steps=50,
        eval_every=0,
        runs_dir=str(tmp_path),
        dqn=DQNConfig(hidden=(8,), learning_starts=10),
    )
    trainer = Trainer.start(config)
    trainer.run()
    trainer.close()
    with pytest.raises(ConfigError, match="not a swarm environment"):
        DQNWorker.from_run(0, trainer.run_dir.path, checkpoint="latest")


def test_scenarios_run_rl_workers_from_a_trained_run(trained_run: Path) -> None:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.errors import ConfigError
    from swarmlearn.session import run_session

    sc = load_scenario("troubleshooting").override(environment={"services": 3},
                                                   workers={"kind": "rl", "count": 2})
    with pytest.raises(ConfigError, match=r"workers\.policy_path"):
        run_session(sc, episodes=1)
    result = run_session(sc.override(workers={"policy_path": str(trained_run)}), episodes=5)
    assert len(result.episodes) == 5 and result.actions > 0
