"""DQN policies in the federation: each node trains :class:`swarmlearn.rl.DQN` on its
own environment seeds and shares the policy's weights (FedAvg, weighted by steps).

A node's agent — weights, optimizer, replay buffer, RNG — is kept between rounds in
its Flower ``Context`` (``swarmlearn.rl``'s state tree split into arrays and JSON);
each round it takes the federation's weights (online and target network), trains
``steps`` environment steps, and replies with its new weights minus the ones it got.
Its local-only twin trains the same steps on the same seeds from its own weights.
Evaluation: the greedy mean return over held-out episode seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn._config import check_range
from swarmlearn.fed._payload import DqnCodec

__all__ = ["DqnFedConfig", "greedy_return", "initial_params", "load_agent", "save_agent",
           "train_steps"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True, slots=True)
class DqnFedConfig:
    env_id: str = "CartPole-v1"
    steps: int = 2000  # environment steps per node and round
    eval_episodes: int = 10
    eval_seed: int = 70_000
    hidden: tuple[int, ...] = (64, 64)
    learning_starts: int = 500
    buffer_size: int = 20_000

    def __post_init__(self) -> None:
        check_range("steps", self.steps, lo=1)
        check_range("eval_episodes", self.eval_episodes, lo=1)
        check_range("learning_starts", self.learning_starts, lo=0)
        check_range("buffer_size", self.buffer_size, lo=64)


def _spaces(cfg: DqnFedConfig) -> tuple[int, int]:
    from swarmlearn.rl import make_env

    env = make_env(cfg.env_id)
    try:
        return int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    finally:
        env.close()


def new_agent(cfg: DqnFedConfig, *, rounds: int, seed: int) -> Any:
    from swarmlearn.rl import DQN, DQNConfig

    obs_dim, n_actions = _spaces(cfg)
    dqn = DQNConfig(seed=seed, hidden=cfg.hidden, learning_starts=cfg.learning_starts,
                    buffer_size=cfg.buffer_size)
    return DQN(dqn, obs_dim=obs_dim, n_actions=n_actions, total_steps=rounds * cfg.steps)


def initial_params(cfg: DqnFedConfig, *, rounds: int, seed: int) -> list[F64]:
    """The federation's first weights (a fresh network seeded with ``seed``)."""
    agent = new_agent(cfg, rounds=rounds, seed=seed)
    return DqnCodec(agent).encode(agent)


def train_steps(agent: Any, cfg: DqnFedConfig, *, seed: int) -> int:
    """Train ``cfg.steps`` environment steps (episodes seeded from ``seed``); the number
    of episodes finished."""
    from swarmlearn.rl import ActMode, EnvPool, Experience, make_env

    pool = EnvPool([make_env(cfg.env_id)], seed=seed)
    try:
        obs = pool.reset()
        finished = 0
        for _ in range(cfg.steps):
            action = agent.act(obs, ActMode.EXPLORE, pool.mask)
            step = pool.step(action)
            agent.observe(Experience(obs, action, step.reward, step.next_obs, step.terminated,
                                     step.truncated, step.next_mask))
            finished += len(step.finished)
            obs = step.obs
        return finished
    finally:
        for env in pool.envs:
            env.close()


def greedy_return(params: list[Any], cfg: DqnFedConfig, *, rounds: int) -> float:
    """Mean greedy return of the policy with ``params`` over the held-out seeds."""
    from swarmlearn.rl import ActMode, EnvPool, make_env

    agent = new_agent(cfg, rounds=rounds, seed=0)
    DqnCodec(agent).decode(params)
    pool = EnvPool([make_env(cfg.env_id)], seed=cfg.eval_seed)
    try:
        done = pool.run_episodes(lambda o, m: agent.act(o, ActMode.EXPLOIT, m),
                                 cfg.eval_episodes, seed=cfg.eval_seed)
    finally:
        for env in pool.envs:
            env.close()
    return float(np.mean([e.total_reward for e in done]))


def save_agent(context: Any, key: str, agent: Any) -> None:
    """Keep ``agent``'s whole state in the node's Context (arrays + JSON)."""
    from swarmlearn._extras import require
    from swarmlearn.rl._checkpoint import split_state

    fl = require("flwr.app", "fed")
    meta, arrays = split_state(agent.state_dict())
    context.state[f"{key}.arrays"] = fl.ArrayRecord({k: fl.Array(v) for k, v in arrays.items()})
    context.state[f"{key}.meta"] = fl.ConfigRecord({"json": json.dumps(meta)})


def load_agent(context: Any, key: str, cfg: DqnFedConfig, *, rounds: int, seed: int) -> Any:
    """The agent kept under ``key`` (a fresh one seeded with ``seed`` the first time)."""
    from swarmlearn.rl._checkpoint import join_state

    agent = new_agent(cfg, rounds=rounds, seed=seed)
    if f"{key}.arrays" in context.state.array_records:
        record = context.state[f"{key}.arrays"]
        arrays = {k: record[k].numpy() for k in record}
        meta = json.loads(str(context.state[f"{key}.meta"]["json"]))
        agent.load_state_dict(join_state(meta, arrays))
    return agent
