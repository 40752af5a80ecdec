"""Select + update decisions per second inside swarm-like episodes: ours, mabwiser, minimal.

    .venv/bin/python benchmarks/selection.py [--arms 10 30 100] [--decisions 5000] [--repeat 3]

The decision stream is what a swarm worker produces, not a warm cache:

* every decision gets a **new candidate list** (a fresh list object of the arms),
* the worker's **history tail** moves (its last 8 ActionEvents, as RuleWorker keeps),
* an **episode ends every 20 decisions** (an EpisodeEnded into the statistics, which
  re-credits the n-grams and transitions; the policy's end_episode; the history clears).

Each side sees the same Bernoulli arms and the same reward stream (``draws[t][arm]``).
What is timed per decision:

* **ours**: ``policy.select(candidates, ctx)`` + the ActionEvent built and fed to the
  statistics as the bus feeds its inline subscriber (``stats.observe((event,))``: the C
  path when the accelerator is built) + the episode-end work, i.e. the swarm's learning
  path;
* **mabwiser** 2.7: ``predict()`` + ``partial_fit([arm], [reward])``;
* **minimal**: a plain-Python UCB1 (15 lines) or Thompson (``random.betavariate``).

Like for like: the comparison rows switch our learned bonus off (``learning_weight=0``)
and configure mabwiser to the same algorithm: our UCB1 is ``rate + c·√(ln N / n)`` with
``c = √2``, mabwiser's is ``mean + α·√(2 ln N / n)``, so ``α = 1``; Thompson is
``Beta(s+1, f+1)`` on both sides. Every side starts after the same K warm-up plays (one
per arm, the same rewards: our UCB1 plays unvisited arms first; mabwiser is ``fit`` on
them), so priors match. For UCB1 the benchmark also reports how many decisions ours and
mabwiser's took the same arm (deterministic, so they should agree pick for pick). A row
with the bonus on shows what the swarm really runs.

Targets (issue 10): ours >= 30x mabwiser and within 3x of the minimal baseline, at 10,
30 and 100 arms. The first output line says whether the C accelerator ran.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import warnings
from collections import deque
from collections.abc import Callable

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds
from swarmlearn.core.manager import Guidance
from swarmlearn.core.workers import HISTORY, SelectionContext, SelectionPolicy
from swarmlearn.learn.policies import LearningState, PolicyConfig, ThompsonPolicy, UCB1Policy
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.types import Failure, Success

EPISODE = 20
Draws = tuple[tuple[bool, ...], ...]  # draws[t][arm]: the reward of arm at decision t


def rewards(arms: int, decisions: int, seed: int) -> tuple[list[float], Draws]:
    rng = random.Random(seed)
    probs = [rng.uniform(0.05, 0.95) for _ in range(arms)]
    # tuples, which the cyclic GC stops walking after its first pass: as lists, the stream
    # (up to 510,000 cells) was walked at every full collection, whichever side triggered it
    draws = tuple(tuple(rng.random() < p for p in probs) for _ in range(arms + decisions))
    return probs, draws


Result = tuple[float, list[int]]  # decisions/s, the arms picked


def ours(kind: str, arms: int, draws: Draws, *, bonus: bool) -> Result:
    stats = LearnedStats()
    state = LearningState(stats, PolicyConfig(learning_weight=0.3 if bonus else 0.0))
    policy: SelectionPolicy = (UCB1Policy(state) if kind == "ucb1"
                               else ThompsonPolicy(state, seed=1))
    cands = [Candidate(Action(f"arm{i}"), "ctx") for i in range(arms)]
    obs = Observation(step=0, candidates=tuple(cands), targets={}, facts={}, done=False)
    guidance = Guidance()
    history: deque[ActionEvent] = deque(maxlen=HISTORY)
    ids = EventIds(1)
    ok, bad = ActionResult(True), ActionResult(False)
    won_in_episode = 0
    picks: list[int] = []

    def play(i: int, won: bool, t: int) -> None:
        nonlocal won_in_episode
        event = ActionEvent(ids.next(), 1, "t", "", t // EPISODE, t, 0, cands[i].action.name,
                            "", (), ok if won else bad, 0.0, "ctx", 0.0)
        stats.observe((event,))  # what the bus hands its inline subscriber: the C path
        policy.update(event)
        history.append(event)
        won_in_episode += won
        if t % EPISODE == EPISODE - 1:  # the episode ends
            outcome = (Success(won_in_episode / EPISODE) if 2 * won_in_episode > EPISODE
                       else Failure("few rewards"))
            stats.observe([EpisodeEnded(ids.next(), 1, "t", "", t // EPISODE, 0, outcome,
                                        EPISODE, EPISODE, 0.0, 0, 0, {}, 0.0)])
            policy.end_episode(outcome)
            history.clear()
            won_in_episode = 0

    for t in range(arms):  # warm-up: one play per arm (UCB1 plays unvisited arms first)
        play(t, draws[t][t], t)
    t0 = time.perf_counter()
    ctx = SelectionContext(0, obs, guidance, history)  # one per worker, as RuleWorker keeps
    for t in range(arms, len(draws)):
        ctx.observation, ctx.guidance = obs, guidance  # refreshed per decision, as RuleWorker does
        i = policy.select(list(cands), ctx)
        picks.append(i)
        play(i, draws[t][i], t)
    elapsed = time.perf_counter() - t0
    return len(picks) / elapsed, picks


def theirs(kind: str, arms: int, draws: Draws) -> Result:
    from mabwiser.mab import MAB, LearningPolicy

    names = [f"arm{i}" for i in range(arms)]
    index = {n: i for i, n in enumerate(names)}
    lp = LearningPolicy.UCB1(alpha=1.0) if kind == "ucb1" else LearningPolicy.ThompsonSampling()
    mab = MAB(arms=names, learning_policy=lp, seed=1)
    mab.fit(decisions=names, rewards=[int(draws[t][t]) for t in range(arms)])  # the warm-up
    picks: list[int] = []
    t0 = time.perf_counter()
    for t in range(arms, len(draws)):
        i = index[mab.predict()]
        picks.append(i)
        mab.partial_fit([names[i]], [int(draws[t][i])])
    elapsed = time.perf_counter() - t0
    return len(picks) / elapsed, picks


def minimal(kind: str, arms: int, draws: Draws) -> Result:
    """The plainest correct UCB1 / Thompson: lists of counts, one loop per decision."""
    n = [1] * arms
    s = [float(draws[t][t]) for t in range(arms)]
    rng = random.Random(1)
    pick: Callable[[int], int]
    if kind == "ucb1":
        def pick(total: int) -> int:
            log_t = math.log(total)
            scores = [s[a] / n[a] + math.sqrt(2.0 * log_t / n[a]) for a in range(arms)]
            return scores.index(max(scores))
    else:
        def pick(total: int) -> int:
            draws_ = [rng.betavariate(s[a] + 1.0, n[a] - s[a] + 1.0) for a in range(arms)]
            return draws_.index(max(draws_))
    picks: list[int] = []
    t0 = time.perf_counter()
    for t in range(arms, len(draws)):
        i = pick(t)
        picks.append(i)
        n[i] += 1
        s[i] += draws[t][i]
    elapsed = time.perf_counter() - t0
    return len(picks) / elapsed, picks


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
    print(f"\nselect+update decisions/s inside episodes of {EPISODE} decisions (new candidate "
          f"list per decision, real history tails), {args.decisions:,} decisions each side, "
          f"median of {args.repeat}; 'ours' and 'mabwiser' run the same algorithm with our "
          f"bonus off\n")
    head = (f"{'arms':>5} {'strategy':<9} {'ours':>10} {'mabwiser':>9} {'minimal':>9} "
            f"{'ours/mab':>9} {'minimal/ours':>13} {'same picks':>11} {'ours, bonus on':>15}")
    print(head)
    misses: list[str] = []
    for arms in args.arms:
        _, draws = rewards(arms, args.decisions, seed=7)
        for kind in ("ucb1", "thompson"):
            runs: dict[str, list[Result]] = {"ours": [], "mab": [], "min": [], "bonus": []}
            for _ in range(args.repeat):  # interleaved, so load hits every side alike
                runs["ours"].append(ours(kind, arms, draws, bonus=False))
                runs["mab"].append(theirs(kind, arms, draws))
                runs["min"].append(minimal(kind, arms, draws))
                runs["bonus"].append(ours(kind, arms, draws, bonus=True))
            rate = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
            same = "–"
            if kind == "ucb1":
                a, b = runs["ours"][0][1], runs["mab"][0][1]
                same = f"{sum(x == y for x, y in zip(a, b, strict=True)) / len(a):.1%}"
            vs_mab, vs_min = rate["ours"] / rate["mab"], rate["min"] / rate["ours"]
            print(f"{arms:>5} {kind:<9} {rate['ours']:>10,.0f} {rate['mab']:>9,.0f} "
                  f"{rate['min']:>9,.0f} {vs_mab:>8.1f}x {vs_min:>12.2f}x {same:>11} "
                  f"{rate['bonus']:>15,.0f}", flush=True)
            if vs_mab < 30:
                misses.append(f"{kind} at {arms} arms: {vs_mab:.1f}x mabwiser (< 30x)")
            if vs_min > 3:
                misses.append(f"{kind} at {arms} arms: minimal is {vs_min:.2f}x ours (> 3x)")
    print("\ntargets: ours/mab >= 30x, minimal/ours <= 3x")
    print("all targets met" if not misses else "NOT met: " + "; ".join(misses))


if __name__ == "__main__":
    main()
