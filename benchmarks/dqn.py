"""swarmlearn's DQN against Stable-Baselines3's DQN, like for like, in one process.

    python benchmarks/dqn.py                          # 10 seeds, every case, 1 thread
    python benchmarks/dqn.py --seeds 0 1 2 --cases cartpole-1step
    python benchmarks/dqn.py --quick                  # a smoke test of the machinery (~2 min)
    python benchmarks/dqn.py --ablation --seeds 0 1 2 # ours only: Double/Dueling/PER/n-step
    python benchmarks/dqn.py --report a.json b.json   # the tables of saved runs, merged

Cases (rl-baselines3-zoo's tuned DQN hyperparameters, hyperparams/dqn.yml):

  cartpole-1step  CartPole-v1, 1-step returns on both sides
  cartpole-3step  CartPole-v1, 3-step returns on both sides (SB3 ``n_steps=3``)
  acrobot-1step   Acrobot-v1, 1-step returns on both sides

Both sides get the same hyperparameters, network ([256, 256] ReLU MLP, PyTorch's
default init), Adam (eps 1e-8), Huber loss, gradient clipping at norm 10, hard
target copies, no Double DQN, no dueling, uniform replay, epsilon schedule and
counting (SB3's: train every ``train_freq`` steps once past
``learning_starts``, target synced every ``target_update_interval`` steps).
Both are run for the same environment steps (SB3's ``total_timesteps``
rounded up to whole rollouts) and each side's own gradient-step counter is
printed.

Evaluation: the same code for both sides, greedy (argmax Q), every
``eval_every`` environment steps, ``eval_episodes`` episodes on the same seeds
for both sides (round r, episode k: seed 1,000,000 + r * episodes + k), on the
network as it is after that step's training phase.  Its time is measured and
taken out of both sides' training times.

Times: "wall" is training wall time; "cpu" is the process's CPU time over
the same stretch (both single-threaded with ``--threads 1``).  On a shared
machine wall time includes waiting for a core, which changes with the
neighbours' load during a run; CPU time does not, so the CPU ratio is the
steadier figure of the two.

Sustained criterion: with E_1, E_2, ... the evaluation means, a run *reaches*
at evaluation r when mean(E_{r-2}, E_{r-1}, E_r) >= threshold and
E_r >= threshold; "steps to sustained" is the step of the first such r.
"held at end" applies the same test to the run's last three evaluations.
"first single" is the old, weaker figure: the first E_r >= threshold.
"final50" is 50 greedy episodes after the last step (seeds 2,000,000 + k).

The sides alternate which runs first from seed to seed, so background load
on a shared machine hits both; the time ratios are reported per seed and as
their median.  Results go to ``--json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EVAL_SEED = 1_000_000
FINAL_SEED = 2_000_000
WINDOW = 3

CARTPOLE_ZOO: dict[str, Any] = {
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
ACROBOT_ZOO: dict[str, Any] = {
    "learning_rate": 6.3e-4,
    "batch_size": 128,
    "buffer_size": 50_000,
    "learning_starts": 0,
    "gamma": 0.99,
    "target_update_interval": 250,
    "train_freq": 4,
    "gradient_steps": -1,  # SB3: as many gradient steps as env steps in the rollout
    "exploration_fraction": 0.12,
    "exploration_final_eps": 0.1,
}


@dataclass(frozen=True)
class Case:
    name: str
    env_id: str
    total_steps: int
    """SB3's ``total_timesteps`` (rl-zoo's ``n_timesteps``); our epsilon horizon too."""
    zoo: dict[str, Any]
    n_step: int
    threshold: float
    hidden: tuple[int, ...] = (256, 256)

    @property
    def gradient_steps(self) -> int:
        """Our gradient steps per phase (SB3's -1 is one per env step, 1 env)."""
        g = int(self.zoo["gradient_steps"])
        return int(self.zoo["train_freq"]) if g < 0 else g

    @property
    def env_steps(self) -> int:
        """SB3 collects whole rollouts: ``total_steps`` rounded up to ``train_freq``."""
        f = int(self.zoo["train_freq"])
        return math.ceil(self.total_steps / f) * f


CASES = {
    "cartpole-1step": Case("cartpole-1step", "CartPole-v1", 50_000, CARTPOLE_ZOO, 1, 475.0),
    "cartpole-3step": Case("cartpole-3step", "CartPole-v1", 50_000, CARTPOLE_ZOO, 3, 475.0),
    "acrobot-1step": Case("acrobot-1step", "Acrobot-v1", 100_000, ACROBOT_ZOO, 1, -100.0),
}


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    p.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for both sides")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--final-episodes", type=int, default=50)
    p.add_argument("--repeats", type=int, default=1, help="timing repeats per seed and side")
    p.add_argument("--quick", action="store_true", help="1 seed, 10k steps: a smoke test")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument(
        "--sb3-flush-denormal",
        action="store_true",
        help="SB3 trains with torch.set_flush_denormal(True) (not SB3's default; see docs/rl.md)",
    )
    p.add_argument("--json", type=Path, default=Path("runs/bench/dqn.json"))
    p.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="print the tables of results JSONs (runs of several files merged), run nothing",
    )
    p.add_argument("--ablation", action="store_true", help="ours only, each part on/off")
    p.add_argument("--variants", nargs="+", help="ablation variants (default: a standard set)")
    args = p.parse_args()
    if args.quick:
        if "--seeds" not in sys.argv:
            args.seeds = [0]
        args.eval_episodes, args.final_episodes = 5, 10
    return args


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
Greedy = Callable[[Any, Any], Any]


def _case(name: str) -> Case:
    case = CASES[name]
    if ARGS.quick:
        return Case(case.name, case.env_id, 10_000, case.zoo, case.n_step, case.threshold)
    return case


@dataclass
class Run:
    case: str
    side: str
    seed: int
    threshold: float
    wall: float
    """Training wall time in seconds, evaluation excluded."""
    eval_wall: float
    gradient_steps: int
    env_steps: int
    curve: list[tuple[int, float]] = field(default_factory=list)
    final_mean: float = math.nan
    cpu: float = math.nan
    """Training CPU time of the process in seconds, evaluation excluded."""
    eval_cpu: float = math.nan

    @property
    def first_single(self) -> int | None:
        return next((s for s, m in self.curve if m >= self.threshold), None)

    @property
    def sustained(self) -> int | None:
        return first_sustained(self.curve, self.threshold)

    @property
    def held_at_end(self) -> bool:
        return len(self.curve) >= WINDOW and _window_ok(
            self.curve, len(self.curve) - 1, self.threshold
        )


def _window_ok(curve: Sequence[tuple[int, float]], r: int, threshold: float) -> bool:
    means = [m for _, m in curve[r - WINDOW + 1 : r + 1]]
    return means[-1] >= threshold and statistics.fmean(means) >= threshold


def first_sustained(curve: Sequence[tuple[int, float]], threshold: float) -> int | None:
    """Step of the first evaluation whose window of three passes (see the module docstring)."""
    for r in range(WINDOW - 1, len(curve)):
        if _window_ok(curve, r, threshold):
            return curve[r][0]
    return None


class Clock:
    """Wall and process CPU seconds since it was made, with the evaluations inside taken out.

    CPU time is what a single-threaded run costs however busy the machine is;
    wall time on a shared machine also holds the time spent waiting for a core.
    """

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.eval_wall = self.eval_cpu = 0.0

    def excluding(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its time counted as evaluation."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.eval_wall += time.perf_counter() - w
                self.eval_cpu += time.process_time() - c

        return timed

    def times(self) -> dict[str, float]:
        return {
            "wall": time.perf_counter() - self.wall0 - self.eval_wall,
            "cpu": time.process_time() - self.cpu0 - self.eval_cpu,
            "eval_wall": self.eval_wall,
            "eval_cpu": self.eval_cpu,
        }


def _evaluate(pool: EnvPool, greedy: Greedy, episodes: int, seed: int) -> float:
    return float(np.mean([e.total_reward for e in pool.run_episodes(greedy, episodes, seed=seed)]))


def _eval_seed(step: int) -> int:
    return EVAL_SEED + (step // ARGS.eval_every) * ARGS.eval_episodes


class Heartbeat:
    """A progress line on stderr every tenth evaluation."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.count, self.t0 = label, total, 0, time.perf_counter()

    def __call__(self, step: int, mean: float) -> None:
        self.count += 1
        if self.count % 10 == 0:
            print(
                f"    [{self.label}] {step:>7,}/{self.total:,} steps, eval {mean:7.1f}, "
                f"{time.perf_counter() - self.t0:5.0f}s",
                file=sys.stderr,
                flush=True,
            )


def our_config(case: Case, seed: int, parts: frozenset[str] = frozenset()) -> DQNConfig:
    """``case``'s hyperparameters in our names; ``parts`` switches on extras (ablation)."""
    zoo = {k: v for k, v in case.zoo.items() if k != "gradient_steps"}
    return DQNConfig(
        **zoo,
        gradient_steps=case.gradient_steps,
        hidden=case.hidden,
        exploration_initial_eps=1.0,  # SB3's defaults from here on
        max_grad_norm=10.0,
        adam_eps=1e-8,
        tau=1.0,
        double="double" in parts,
        dueling="dueling" in parts,
        prioritized="per" in parts,
        n_step=3 if "nstep" in parts else case.n_step,
        blas_threads=ARGS.threads,
        seed=seed,
    )


def run_ours(case: Case, seed: int, parts: frozenset[str] = frozenset(), label: str = "") -> Run:
    envs = EnvPool.make(case.env_id, 1, seed=seed)
    eval_pool = EnvPool.make(case.env_id, ARGS.eval_episodes)
    agent = DQN(
        our_config(case, seed, parts),
        obs_dim=envs.obs_dim,
        n_actions=envs.n_actions,
        total_steps=case.total_steps,
    )
    session = TrainingSession(agent, SessionConfig(max_steps=case.env_steps, checkpoint_every=0))
    loop_config = LoopConfig(
        eval_every=ARGS.eval_every, eval_episodes=ARGS.eval_episodes, eval_seed=EVAL_SEED
    )
    beat = Heartbeat(label or f"{case.name} seed {seed} ours", case.env_steps)
    loop = GymLoop(session, envs, eval_pool, loop_config)
    clock = Clock()
    eval_pool.run_episodes = clock.excluding(eval_pool.run_episodes)  # type: ignore[method-assign]
    out = loop.run(on_eval=lambda r: beat(r.step, r.mean_reward))
    run = Run(
        case=case.name,
        side="ours",
        seed=seed,
        threshold=case.threshold,
        gradient_steps=agent.n_updates,
        env_steps=session.steps,
        curve=[(r.step, r.mean_reward) for r in out.evaluations],
        **clock.times(),
    )
    run.final_mean = _evaluate(
        EnvPool.make(case.env_id, 10),
        lambda o, m: agent.act(o, ActMode.EXPLOIT, m),
        ARGS.final_episodes,
        FINAL_SEED,
    )
    return run


def _sb3_greedy(model: Any) -> Greedy:
    def act(obs: np.ndarray, mask: Any) -> np.ndarray:
        with torch.no_grad():
            return model.q_net(torch.as_tensor(obs)).argmax(dim=1).numpy()

    return act


def run_sb3(case: Case, seed: int) -> Run:
    import gymnasium as gym
    from stable_baselines3 import DQN as SB3DQN

    eval_pool = EnvPool.make(case.env_id, ARGS.eval_episodes)
    beat = Heartbeat(f"{case.name} seed {seed} sb3 ", case.env_steps)
    curve: list[tuple[int, float]] = []
    clock = Clock()

    @clock.excluding
    def evaluate(model: Any) -> None:
        step = model.num_timesteps
        curve.append(
            (step, _evaluate(eval_pool, _sb3_greedy(model), ARGS.eval_episodes, _eval_seed(step)))
        )
        beat(*curve[-1])

    class Evaluated(SB3DQN):  # type: ignore[misc]
        """Evaluates every ``eval_every`` steps after that step's training phase, as ours does."""

        pending = False

        def _on_step(self) -> None:
            super()._on_step()
            if self.num_timesteps % ARGS.eval_every:
                return
            trains_now = (
                self.num_timesteps % case.zoo["train_freq"] == 0
                and self.num_timesteps > self.learning_starts
            )
            if trains_now:
                self.pending = True  # SB3 trains after this rollout ends: evaluate after that
            else:
                evaluate(self)

        def train(self, gradient_steps: int, batch_size: int = 100) -> None:
            super().train(gradient_steps, batch_size)
            if self.pending:
                self.pending = False
                evaluate(self)

    model = Evaluated(
        "MlpPolicy",
        gym.make(case.env_id),
        **case.zoo,
        n_steps=case.n_step,
        policy_kwargs={"net_arch": list(case.hidden)},
        seed=seed,
        verbose=0,
        device="cpu",
    )
    clock.restart()  # the model's construction is not timed
    torch.set_flush_denormal(ARGS.sb3_flush_denormal)
    try:
        model.learn(case.total_steps)
    finally:
        torch.set_flush_denormal(False)
    run = Run(
        case=case.name,
        side="sb3",
        seed=seed,
        threshold=case.threshold,
        gradient_steps=model._n_updates,
        env_steps=model.num_timesteps,
        curve=curve,
        **clock.times(),
    )
    run.final_mean = _evaluate(
        EnvPool.make(case.env_id, 10), _sb3_greedy(model), ARGS.final_episodes, FINAL_SEED
    )
    return run


# ---- driving and reporting --------------------------------------------------------------


def _fmt(step: int | None) -> str:
    return f"{step:,}" if step is not None else "never"


def _median_wall(runs: list[Run]) -> Run:
    """The first run, with the median wall and CPU time of the repeats."""
    first = runs[0]
    first.wall = statistics.median(r.wall for r in runs)
    first.cpu = statistics.median(r.cpu for r in runs)
    return first


def _run_line(r: Run) -> str:
    return (
        f"  {r.case} seed {r.seed} {r.side:4s}: wall {r.wall:6.1f}s cpu {r.cpu:6.1f}s  first "
        f"{_fmt(r.first_single):>7}  sustained {_fmt(r.sustained):>7}  "
        f"held at end {'yes' if r.held_at_end else 'no ':3}  final50 {r.final_mean:7.1f}  "
        f"grad steps {r.gradient_steps:,}"
    )


def run_seed(case: Case, seed: int, k: int, save: Callable[[Run], None]) -> tuple[Run, Run | None]:
    """Both sides on one seed, ``--repeats`` times each, alternating which goes first."""
    ours: list[Run] = []
    sb3: list[Run] = []
    for rep in range(ARGS.repeats):
        order = ["ours", "sb3"] if (k + rep) % 2 == 0 else ["sb3", "ours"]
        for side in order:
            if side == "sb3" and ARGS.skip_sb3:
                continue
            run = run_ours(case, seed) if side == "ours" else run_sb3(case, seed)
            (ours if side == "ours" else sb3).append(run)
            print(_run_line(run) + (f"  (repeat {rep})" if ARGS.repeats > 1 else ""), flush=True)
            save(run)
    return _median_wall(ours), (_median_wall(sb3) if sb3 else None)


def _side_cells(r: Run | None) -> str:
    if r is None:
        return f"{'-':>7} {'-':>7} {'-':>3} {'-':>7} {'-':>6} {'-':>6}"
    return (
        f"{_fmt(r.first_single):>7} {_fmt(r.sustained):>7} "
        f"{'yes' if r.held_at_end else 'no':>3} {r.final_mean:>7.1f} {r.wall:>6.1f} {r.cpu:>6.1f}"
    )


def _median_sustained(runs: list[Run]) -> str:
    """Median steps to sustained; a seed that never got there counts as beyond the budget."""
    med = statistics.median(math.inf if r.sustained is None else r.sustained for r in runs)
    return "never" if med == math.inf else f"{med:,.0f}"


def _median_steps(runs: list[Run]) -> str:
    never = sum(r.sustained is None for r in runs)
    note = f" ({never} 'never' counted as beyond the budget)" if never else ""
    return f"median steps {_median_sustained(runs)}{note}"


def print_case(case: Case, rows: list[tuple[Run, Run | None]]) -> dict[str, Any]:
    """The per-seed table and the summary of one case; returns the summary."""
    sub = f"{'first':>7} {'sust.':>7} end final50 wall s  cpu s"
    print(
        f"\n{case.name}: {case.env_id}, {case.n_step}-step returns both sides, "
        f"{case.env_steps:,} env steps, threshold {case.threshold:g}"
    )
    head = f"seed | ours: {sub} | sb3:  {sub} | ours/sb3 wall   cpu"
    print(head)
    print("-" * len(head))
    wall_ratios: list[float] = []
    cpu_ratios: list[float] = []
    for ours, sb3 in rows:
        ratio = ""
        if sb3 is not None:
            wall_ratios.append(ours.wall / sb3.wall)
            cpu_ratios.append(ours.cpu / sb3.cpu)
            ratio = f"{wall_ratios[-1]:>13.2f} {cpu_ratios[-1]:>5.2f}"
        print(f"{ours.seed:>4} |       {_side_cells(ours)} |       {_side_cells(sb3)} | {ratio}")
    print("-" * len(head))
    summary: dict[str, Any] = {}
    for side, runs in (("ours", [o for o, _ in rows]), ("sb3", [s for _, s in rows if s])):
        if runs:
            summary[side] = _side_summary(side, runs)
    for name, ratios in (("wall", wall_ratios), ("cpu", cpu_ratios)):
        if ratios:
            summary[f"{name}_ratio"] = {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            }
            print(
                f"{name} ratio ours/sb3: median of per-seed {statistics.median(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
            )
    return summary


def _side_summary(side: str, runs: list[Run]) -> dict[str, Any]:
    reached = sum(r.sustained is not None for r in runs)
    held = sum(r.held_at_end for r in runs)
    wall = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    print(
        f"{side:4s}: sustained on {reached}/{len(runs)} seeds, {_median_steps(runs)}, "
        f"held at end {held}/{len(runs)}, median train wall {wall:.1f}s, cpu {cpu:.1f}s"
    )
    return {
        "sustained": reached,
        "held_at_end": held,
        "seeds": len(runs),
        "median_wall": wall,
        "median_cpu": cpu,
    }


class Results:
    """The JSON record, rewritten after every run."""

    def __init__(self, path: Path, mode: str) -> None:
        import gymnasium

        self.path = path
        self.data: dict[str, Any] = {
            "mode": mode,
            "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "torch": torch.__version__,
                "gymnasium": gymnasium.__version__,
                "stable_baselines3": _sb3_version(),
            },
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(ARGS).items()},
            "criterion": {"window": WINDOW, "eval_seed": EVAL_SEED, "final_seed": FINAL_SEED},
            "cases": {},
            "runs": [],
            "summary": {},
        }

    def add_case(self, case: Case) -> None:
        self.data["cases"][case.name] = {**asdict(case), "env_steps": case.env_steps}

    def add(self, run: Run, **extra: Any) -> None:
        record = {
            **asdict(run),
            **extra,
            "first_single": run.first_single,
            "sustained": run.sustained,
            "held_at_end": run.held_at_end,
        }
        self.data["runs"].append(record)
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _sb3_version() -> str | None:
    try:
        import stable_baselines3
    except ImportError:
        return None
    return str(stable_baselines3.__version__)


def compare() -> None:
    results = Results(ARGS.json, "compare")
    print(
        f"threads={ARGS.threads}, seeds {ARGS.seeds}, eval every {ARGS.eval_every:,} steps x "
        f"{ARGS.eval_episodes} greedy episodes, sustained = mean of last {WINDOW} and last one "
        f">= threshold" + (" [QUICK: 10k steps, not a measurement]" if ARGS.quick else "")
    )
    tables: list[tuple[Case, list[tuple[Run, Run | None]]]] = []
    for name in ARGS.cases:
        case = _case(name)
        results.add_case(case)
        rows = [run_seed(case, seed, k, results.add) for k, seed in enumerate(ARGS.seeds)]
        tables.append((case, rows))
        results.data["summary"][case.name] = print_case(case, rows)
        results.write()
    print("\n==== all cases ====")
    for case, rows in tables:
        print_case(case, rows)
    print(f"\nresults: {ARGS.json}")


def report(paths: Sequence[Path]) -> None:
    """The tables of finished (or partial) ``compare`` runs, from their JSONs.

    Several files (e.g. seeds split over two processes) are merged: their
    cases and runs are pooled, each seed's sides paired as in one file.
    """
    cases: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(path.read_text())
        print(f"{path}: {' '.join(data['argv'])} (started {data['started']}), {data['versions']}")
        cases.update(data["cases"])
        runs.extend(data["runs"])
    for name, raw in cases.items():
        fields = {k: v for k, v in raw.items() if k != "env_steps"}
        case = Case(**{**fields, "hidden": tuple(fields["hidden"])})
        by_key: dict[tuple[int, str], list[Run]] = {}
        for rec in runs:
            if rec["case"] == name:
                keep = {k: v for k, v in rec.items() if k in Run.__dataclass_fields__}
                run = Run(**{**keep, "curve": [tuple(c) for c in keep["curve"]]})
                by_key.setdefault((run.seed, run.side), []).append(run)
        seeds = sorted({seed for seed, side in by_key if side == "ours"})
        rows = [
            (_median_wall(by_key[seed, "ours"]), _median_wall(by_key[seed, "sb3"]))
            if (seed, "sb3") in by_key
            else (_median_wall(by_key[seed, "ours"]), None)
            for seed in seeds
        ]
        print_case(case, rows)


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


def _parts(spec: str) -> frozenset[str]:
    parts = frozenset() if spec == "vanilla" else frozenset(p.strip() for p in spec.split(","))
    unknown = parts - {"double", "dueling", "per", "nstep"}
    if unknown:
        raise SystemExit(f"unknown variant parts: {sorted(unknown)}")
    return parts


def ablation() -> None:
    """Ours only on CartPole (1-step base), each Rainbow part on or off."""
    results = Results(ARGS.json, "ablation")
    case = _case("cartpole-1step")
    results.add_case(case)
    print(f"Ablation (ours only), {case.env_id}, threads={ARGS.threads}, seeds {ARGS.seeds}")
    head = (
        f"{'variant':26} | {'sustained':>9} | {'median':>7} | {'held':>4} | {'final50':>7} | "
        f"{'cpu s':>5}   [sustained per seed] [final50 per seed]"
    )
    lines = []
    for spec in ARGS.variants or ABLATION:
        runs = []
        for seed in ARGS.seeds:
            runs.append(run_ours(case, seed, _parts(spec), f"{spec} seed {seed}"))
            results.add(runs[-1], variant=spec)
        done = [r.sustained for r in runs if r.sustained is not None]
        med = _median_sustained(runs)
        line = (
            f"{spec:26} | {len(done):>4}/{len(runs):<4} | {med:>7} | "
            f"{sum(r.held_at_end for r in runs):>4} | "
            f"{statistics.mean(r.final_mean for r in runs):>7.1f} | "
            f"{statistics.median(r.cpu for r in runs):>5.1f}   "
            f"[{' '.join(_fmt(r.sustained) for r in runs)}] "
            f"[{' '.join(f'{r.final_mean:.0f}' for r in runs)}]"
        )
        print(line, flush=True)
        lines.append(line)
    print()
    print(head)
    print("-" * len(head))
    print("\n".join(lines))


if __name__ == "__main__":
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}, "
        f"stable-baselines3 {_sb3_version()}"
    )
    if ARGS.report:
        report(ARGS.report)
    elif ARGS.ablation:
        ablation()
    else:
        compare()
