"""swarmlearn's DQN against Stable-Baselines3's DQN on CartPole-v1, in one process.

    python benchmarks/dqn_cartpole.py                      # 3 seeds, both sides, 1 thread
    python benchmarks/dqn_cartpole.py --threads 2
    python benchmarks/dqn_cartpole.py --ablation           # ours: Double/Dueling/PER/n-step on/off

Both sides use rl-zoo's tuned CartPole-v1 hyperparameters (lr 2.3e-3, batch 64,
buffer 100k, learning starts 1000, gamma 0.99, target update every 10 steps,
train every 256 steps with 128 gradient steps, exploration over 16% of 50k
steps down to 0.04, MLP [256, 256]) and do the same amount of learning: the
same number of environment steps (SB3's 50k rounded up to whole 256-step
rollouts: 50,176), of gradient steps (193 x 128 = 24,704), batch size and
network widths.  Printed gradient-step counts come from each side's own
counter.

Both are evaluated by the same code, greedily, every ``--eval-every`` steps on
the same seeded episodes; evaluation time is measured and taken out of both
wall times.  The sides alternate within each seed (which runs first flips
from seed to seed) so background load on a shared machine hits both; the
ratio is reported per seed and as the median.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

ENV_ID = "CartPole-v1"
TOTAL_STEPS = 50_000
ZOO: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}
HIDDEN = (256, 256)
THRESHOLD = 475.0
EVAL_SEED = 1_000_000
FINAL_SEED = 2_000_000


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for both sides")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--final-episodes", type=int, default=50)
    p.add_argument("--repeats", type=int, default=1, help="timing repeats per seed and side")
    p.add_argument("--ours", default="nstep", help="our variant: comma list or 'vanilla'")
    p.add_argument("--ablation", action="store_true", help="ours only, each part on/off")
    p.add_argument("--variants", nargs="+", help="ablation variants (default: a standard set)")
    p.add_argument("--skip-sb3", action="store_true")
    return p.parse_args()


ARGS = _parse()
# Thread counts must be fixed before NumPy/PyTorch load their BLAS.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from swarmlearn.rl import (  # noqa: E402
    DQN,
    ActMode,
    DQNConfig,
    EnvPool,
    GymLoop,
    LoopConfig,
    SessionConfig,
    TrainingSession,
)

torch.set_num_threads(ARGS.threads)
ROLLOUT_STEPS = math.ceil(TOTAL_STEPS / ZOO["train_freq"]) * ZOO["train_freq"]  # SB3's 50,176


@dataclass
class Result:
    side: str
    seed: int
    wall: float  # training wall time, evaluation excluded
    eval_wall: float
    gradient_steps: int
    steps: int
    curve: list[tuple[int, float]] = field(default_factory=list)
    final_mean: float = math.nan

    @property
    def reached(self) -> int | None:
        return next((s for s, m in self.curve if m >= THRESHOLD), None)


def _evaluate(pool: EnvPool, greedy: Any, episodes: int, seed: int) -> float:
    return float(np.mean([e.total_reward for e in pool.run_episodes(greedy, episodes, seed=seed)]))


def variant_config(spec: str, seed: int) -> DQNConfig:
    parts = set() if spec == "vanilla" else {p.strip() for p in spec.split(",") if p.strip()}
    unknown = parts - {"double", "dueling", "per", "nstep"}
    if unknown:
        raise SystemExit(f"unknown variant parts: {sorted(unknown)}")
    return DQNConfig(
        **ZOO,
        hidden=HIDDEN,
        exploration_initial_eps=1.0,
        max_grad_norm=10.0,
        tau=1.0,
        double="double" in parts,
        dueling="dueling" in parts,
        prioritized="per" in parts,
        n_step=3 if "nstep" in parts else 1,
        blas_threads=ARGS.threads,
        seed=seed,
    )


def run_ours(seed: int, spec: str) -> Result:
    envs = EnvPool.make(ENV_ID, 1, seed=seed)
    eval_pool = EnvPool.make(ENV_ID, ARGS.eval_episodes)
    agent = DQN(
        variant_config(spec, seed),
        obs_dim=envs.obs_dim,
        n_actions=envs.n_actions,
        total_steps=TOTAL_STEPS,
    )
    session = TrainingSession(agent, SessionConfig(max_steps=ROLLOUT_STEPS, checkpoint_every=0))
    loop = GymLoop(
        session,
        envs,
        eval_pool,
        LoopConfig(
            eval_every=ARGS.eval_every, eval_episodes=ARGS.eval_episodes, eval_seed=EVAL_SEED
        ),
    )
    out = loop.run()
    result = Result(
        "ours",
        seed,
        out.train_seconds,
        out.eval_seconds,
        agent.n_updates,
        session.steps,
        [(r.step, r.mean_reward) for r in out.evaluations],
    )
    final_pool = EnvPool.make(ENV_ID, 10)
    result.final_mean = _evaluate(
        final_pool, lambda o, m: agent.act(o, ActMode.EXPLOIT, m), ARGS.final_episodes, FINAL_SEED
    )
    return result


def run_sb3(seed: int) -> Result:
    import gymnasium as gym
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    eval_pool = EnvPool.make(ENV_ID, ARGS.eval_episodes)

    def greedy(model: Any) -> Any:
        def act(obs: np.ndarray, mask: Any) -> np.ndarray:
            with torch.no_grad():
                return model.q_net(torch.as_tensor(obs)).argmax(dim=1).numpy()

        return act

    class EvalEvery(BaseCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.curve: list[tuple[int, float]] = []
            self.seconds = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % ARGS.eval_every == 0:
                t0 = time.perf_counter()
                rnd = self.num_timesteps // ARGS.eval_every
                mean = _evaluate(
                    eval_pool,
                    greedy(self.model),
                    ARGS.eval_episodes,
                    EVAL_SEED + rnd * ARGS.eval_episodes,
                )
                self.curve.append((self.num_timesteps, mean))
                self.seconds += time.perf_counter() - t0
            return True

    model = SB3DQN(
        "MlpPolicy",
        gym.make(ENV_ID),
        **ZOO,
        policy_kwargs={"net_arch": list(HIDDEN)},
        seed=seed,
        verbose=0,
        device="cpu",
    )
    callback = EvalEvery()
    t0 = time.perf_counter()
    model.learn(TOTAL_STEPS, callback=callback)
    wall = time.perf_counter() - t0 - callback.seconds
    result = Result(
        "sb3", seed, wall, callback.seconds, model._n_updates, model.num_timesteps, callback.curve
    )
    result.final_mean = _evaluate(
        EnvPool.make(ENV_ID, 10), greedy(model), ARGS.final_episodes, FINAL_SEED
    )
    return result


def _fmt_reached(r: int | None) -> str:
    return f"{r:,}" if r is not None else "never"


def compare() -> None:
    print(
        f"CartPole-v1, rl-zoo hyperparameters, {ROLLOUT_STEPS:,} env steps, "
        f"threads={ARGS.threads}, ours={ARGS.ours!r}, "
        f"eval every {ARGS.eval_every} steps x {ARGS.eval_episodes} episodes"
    )
    rows: list[tuple[Result, Result | None]] = []
    for k, seed in enumerate(ARGS.seeds):
        ours_runs, sb3_runs = [], []
        for rep in range(ARGS.repeats):
            order = ["ours", "sb3"] if (k + rep) % 2 == 0 else ["sb3", "ours"]
            for side in order:
                if side == "ours":
                    ours_runs.append(run_ours(seed, ARGS.ours))
                elif not ARGS.skip_sb3:
                    sb3_runs.append(run_sb3(seed))
                latest = ours_runs[-1] if side == "ours" else (sb3_runs[-1] if sb3_runs else None)
                if latest is not None:
                    print(
                        f"  seed {seed} {side:4s} rep {rep}: wall {latest.wall:6.1f}s "
                        f"reached {_fmt_reached(latest.reached):>6s} "
                        f"final {latest.final_mean:6.1f}",
                        flush=True,
                    )
        ours = replace(ours_runs[0], wall=statistics.median(r.wall for r in ours_runs))
        sb3 = (
            replace(sb3_runs[0], wall=statistics.median(r.wall for r in sb3_runs))
            if sb3_runs
            else None
        )
        rows.append((ours, sb3))
    _print_table(rows)


def _print_table(rows: list[tuple[Result, Result | None]]) -> None:
    print()
    head = (
        f"{'seed':>4} | {'side':4} | {'steps to >=475':>14} | {'final eval':>10} | "
        f"{'grad steps':>10} | {'train wall s':>12} | {'ratio':>5}"
    )
    print(head)
    print("-" * len(head))
    ratios = []
    for ours, sb3 in rows:
        for r in (ours, sb3):
            if r is None:
                continue
            ratio = ""
            if r is ours and sb3 is not None:
                ratios.append(ours.wall / sb3.wall)
                ratio = f"{ratios[-1]:.2f}"
            print(
                f"{r.seed:>4} | {r.side:4} | {_fmt_reached(r.reached):>14} | "
                f"{r.final_mean:>10.1f} | {r.gradient_steps:>10,} | {r.wall:>12.1f} | {ratio:>5}"
            )
    ours_w = [o.wall for o, _ in rows]
    sb3_w = [s.wall for _, s in rows if s is not None]
    print("-" * len(head))
    reached_all = all(o.reached is not None and o.reached <= TOTAL_STEPS for o, _ in rows)
    print(
        f"ours: reached >= {THRESHOLD:.0f} on every seed within {TOTAL_STEPS:,}: {reached_all}; "
        f"median train wall {statistics.median(ours_w):.1f}s"
    )
    if sb3_w:
        print(
            f"sb3:  median train wall {statistics.median(sb3_w):.1f}s; reached on "
            f"{sum(s is not None and s.reached is not None for _, s in rows)}/{len(rows)} seeds"
        )
        print(
            f"ratio ours/sb3: median of per-seed {statistics.median(ratios):.2f}, "
            f"of medians {statistics.median(ours_w) / statistics.median(sb3_w):.2f}"
        )


ABLATION = [
    "vanilla",
    "double",
    "dueling",
    "per",
    "nstep",
    "double,dueling",
    "double,dueling,nstep",
    "double,dueling,per,nstep",
]


def ablation() -> None:
    print(
        f"Ablation (ours only), threads={ARGS.threads}, seeds {ARGS.seeds}; steps to >= 475, "
        "final eval mean, train wall s (median over seeds)"
    )
    head = (
        f"{'variant':26} | {'reached':>7} | {'median steps':>12} | {'final mean':>10} | {'wall':>6}"
    )
    lines = []
    for spec in ARGS.variants or ABLATION:
        runs = [run_ours(seed, spec) for seed in ARGS.seeds]
        reached = [r.reached for r in runs]
        per_seed = " ".join(f"{_fmt_reached(x)}" for x in reached)
        done = [x for x in reached if x is not None]
        med = f"{statistics.median(done):,.0f}" if done else "-"
        finals = " ".join(f"{r.final_mean:.0f}" for r in runs)
        line = (
            f"{spec:26} | {len(done)}/{len(runs):<5} | {med:>12} | "
            f"{statistics.mean(r.final_mean for r in runs):>10.1f} | "
            f"{statistics.median(r.wall for r in runs):>6.1f}   [{per_seed}] [{finals}]"
        )
        print(line, flush=True)
        lines.append(line)
    print()
    print(head)
    print("-" * len(head))
    for line in lines:
        print(line)


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}")
    if ARGS.ablation:
        ablation()
    else:
        compare()
