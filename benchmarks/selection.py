"""Select + update decisions per second: our UCB1 and Thompson against mabwiser's.

    .venv/bin/python benchmarks/selection.py [--arms 10 30 100] [--decisions 5000] [--repeat 3]

Both sides get the same Bernoulli arms, the same number of decisions and the
same reward stream; each decision is a full select followed by an update
with the drawn reward. Ours runs the real path: ``policy.select`` over
candidates (with the learned-bonus lookups) and the statistics update from an
``ActionEvent``, as in the swarm. mabwiser runs ``predict()`` then
``partial_fit([arm], [reward])``. Target: ours >= 30x mabwiser's decisions/s.

Ours uses the C ArmSet (learn/_fast.c) when it was built at install time;
``SWARMLEARN_PURE_PYTHON=1`` measures the plain-Python fallback instead. The
first line of the output says which one ran.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent, EventIds
from swarmlearn.core.manager import Guidance
from swarmlearn.core.workers import SelectionContext
from swarmlearn.learn.policies import LearningState, ThompsonPolicy, UCB1Policy
from swarmlearn.learn.stats import LearnedStats


def rewards(arms: int, decisions: int, seed: int) -> tuple[list[float], list[list[bool]]]:
    rng = random.Random(seed)
    probs = [rng.uniform(0.05, 0.95) for _ in range(arms)]
    draws = [[rng.random() < p for p in probs] for _ in range(decisions)]
    return probs, draws


def ours(kind: str, arms: int, draws: list[list[bool]]) -> tuple[float, float]:
    stats = LearnedStats()
    state = LearningState(stats)
    policy = UCB1Policy(state) if kind == "ucb1" else ThompsonPolicy(state, seed=1)
    cands = [Candidate(Action(f"arm{i}"), "ctx") for i in range(arms)]
    obs = Observation(step=0, candidates=tuple(cands), targets={}, facts={}, done=False)
    ctx = SelectionContext(0, obs, Guidance(), ())
    ids = EventIds(1)
    ok, bad = ActionResult(True), ActionResult(False)
    total = 0.0
    t0 = time.perf_counter()
    for row in draws:
        i = policy.select(cands, ctx)
        won = row[i]
        total += won
        stats.observe_action(ActionEvent(ids.next(), 1, "t", "", 0, 0, 0, cands[i].action.name,
                                         "", (), ok if won else bad, 0.0, "ctx", 0.0))
    elapsed = time.perf_counter() - t0
    return len(draws) / elapsed, total / len(draws)


def theirs(kind: str, arms: int, draws: list[list[bool]]) -> tuple[float, float]:
    from mabwiser.mab import MAB, LearningPolicy

    names = [f"arm{i}" for i in range(arms)]
    ucb = kind == "ucb1"
    lp = LearningPolicy.UCB1(alpha=2**0.5) if ucb else LearningPolicy.ThompsonSampling()
    mab = MAB(arms=names, learning_policy=lp, seed=1)
    mab.fit(decisions=names, rewards=[0.5] * arms if kind == "ucb1" else [1] * arms)
    total = 0.0
    t0 = time.perf_counter()
    for row in draws:
        arm = mab.predict()
        won = row[names.index(arm)]
        total += won
        mab.partial_fit([arm], [int(won)])
    elapsed = time.perf_counter() - t0
    return len(draws) / elapsed, total / len(draws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--decisions", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from swarmlearn.learn._armset import FAST

    print("swarmlearn selection: " + ("C accelerator (learn/_fast.c)" if FAST else
                                      "plain Python (learn/_armset.py PyArmSet)"))
    print(f"\nselect+update decisions/s, Bernoulli arms, {args.decisions:,} decisions each side, "
          f"median of {args.repeat}\n")
    print(f"{'arms':>5} {'strategy':<10} {'swarmlearn':>12} {'mabwiser':>10} {'ratio':>7}   "
          f"{'mean reward ours / theirs':>26}")
    for arms in args.arms:
        probs, draws = rewards(arms, args.decisions, seed=7)
        for kind in ("ucb1", "thompson"):
            a = [ours(kind, arms, draws) for _ in range(args.repeat)]
            b = [theirs(kind, arms, draws) for _ in range(args.repeat)]
            ra = statistics.median(x[0] for x in a)
            rb = statistics.median(x[0] for x in b)
            print(f"{arms:>5} {kind:<10} {ra:>12,.0f} {rb:>10,.0f} {ra / rb:>6.1f}x   "
                  f"{a[0][1]:>12.3f} / {b[0][1]:.3f}   (best arm p = {max(probs):.2f})")
    print("\ntarget: ratio >= 30x")


if __name__ == "__main__":
    main()
