"""A real skill run on the local llama.cpp server (the bundled SmolLM2-135M-Instruct as target
and as optimizer), short, on held-out tasks, with intervals.

    nice -n 10 .venv/bin/python benchmarks/skills_real.py swarm --seeds 6 --max-ticks 15
    nice -n 10 .venv/bin/python benchmarks/skills_real.py swarm-opt --seeds 6 --max-ticks 12
    nice -n 10 .venv/bin/python benchmarks/skills_real.py qa --run-dir /tmp/skills-real-qa

``swarm``: does a skill change what the LLM workers of a scenario do? The same
held-out task seeds (never used for anything else) are played with no skill
and with ``--skill`` (default: a short procedure for the troubleshooting
scenario), paired by seed: success rate with Wilson 95% intervals, actions per
solved task, the paired sign test of the gate.

``swarm-opt``: the whole optimizer on the scenario (the 135M plays the
episodes and writes the edits), then initial and best skill on held-out seeds.

``qa``: the whole optimizer on a small QA set (capitals, sums, plurals;
answers of one word or number) with the 135M model as target and as optimizer
(reflection and ranking replies held to their JSON schema by llama.cpp's
grammar): initial and best skill on the held-out test split, exact match with
Wilson intervals and the paired test, calls and tokens, failures by kind. It
also runs a hand-written skill on the test split, to tell "the model cannot use
a skill" from "the optimizer found none".

The machine is shared: wall times are printed but are not the result.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarmlearn._stats import wilson
from swarmlearn.lifecycle import GateConfig, TaskResult, gate
from swarmlearn.llm import LLMClient, LLMClientConfig
from swarmlearn.serving import LlamaServer, LlamaServerConfig
from swarmlearn.skills import (
    QAConfig,
    QAEnv,
    SkillOptConfig,
    SkillOptimizer,
    Split,
    Trajectory,
    rollout,
)
from swarmlearn.skills._edits import skill_hash
from swarmlearn.skills._swarm import SwarmSkillEnv, SwarmTasksConfig

TROUBLESHOOTING_SKILL = """\
1. CheckStatus each service once; a service whose status is degraded is the suspect.
2. ReadLogs or AnalyzeMetrics of the suspect only.
3. Then Diagnose the suspect, then Restart it. Never restart a healthy service.
4. Never repeat an action that had no effect; skip calendar and maintenance actions."""

QA_SKILLS = ("Reply with the answer only: one word or one number. No sentence, no period.",
             "Examples of correct replies:\nQ: What is the capital of Peru? A: Lima\n"
             "Q: What is 3 plus 4? A: 7\nQ: What is the plural of the word 'hat'? A: hats\n"
             "Reply like the examples: the answer alone.")

CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Russia", "Moscow"), ("Greece", "Athens"), ("Portugal", "Lisbon"),
            ("Norway", "Oslo"), ("Austria", "Vienna"), ("Ireland", "Dublin")]
PLURALS = [("cat", "cats"), ("dog", "dogs"), ("box", "boxes"), ("child", "children"),
           ("mouse", "mice"), ("tooth", "teeth"), ("bus", "buses"), ("city", "cities"),
           ("leaf", "leaves"), ("foot", "feet"), ("man", "men"), ("book", "books")]


def qa_items(seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for country, city in CAPITALS:
        items.append({"question": f"What is the capital of {country}?", "answers": [city]})
    for _ in range(12):
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        items.append({"question": f"What is {a} plus {b}?", "answers": [str(a + b)]})
    for word, plural in PLURALS:
        items.append({"question": f"What is the plural of the word '{word}'?",
                      "answers": [plural]})
    return [{"id": i, **it} for i, it in enumerate(items)]


def _rate(results: Sequence[TaskResult]) -> str:
    k, n = sum(r.solved for r in results), len(results)
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]"


def _per_solve(results: Sequence[TaskResult]) -> str:
    solved = [r.cost for r in results if r.solved]
    return f"{sum(solved) / len(solved):.1f}" if solved else "–"


def start_server(threads: int) -> tuple[LlamaServer, LLMClient]:
    server = LlamaServer(LlamaServerConfig(parallel=1, threads=threads))
    server.start()
    return server, server.client(LLMClientConfig(base_url=server.base_url, timeout_s=600))


def swarm(args: argparse.Namespace) -> dict[str, Any]:
    env = SwarmSkillEnv(SwarmTasksConfig(scenario=args.scenario, workers=args.workers,
                                         max_ticks=args.max_ticks, first_seed=args.first_seed,
                                         train=1, val=1, test=args.seeds))
    seeds = env.tasks(Split.TEST)
    skill = Path(args.skill).read_text() if args.skill else TROUBLESHOOTING_SKILL
    server, client = start_server(args.threads)
    out: dict[str, Any] = {"scenario": env.name, "seeds": list(seeds), "skill": skill,
                           "workers": args.workers, "max_ticks": args.max_ticks}
    try:
        sides: dict[str, list[TaskResult]] = {"none": [], "skill": []}
        for seed in seeds:  # alternate the sides, so the machine's load hits both alike
            for name, text in (("none", ""), ("skill", skill)):
                t0 = time.time()
                tr = env.run(seed, text, client)
                sides[name].append(tr.result())
                print(f"seed {seed} {name}: solved={tr.solved} actions={tr.cost:.0f} "
                      f"({time.time() - t0:.0f}s)", flush=True)
    finally:
        server.stop()
    d = gate(sides["none"], sides["skill"], GateConfig(alpha=0.05, min_tasks=1))
    out.update({k: [list(r) for r in v] for k, v in sides.items()})
    out["paired"] = d.to_dict()
    print(f"\n{env.name}, {args.workers} LLM worker(s), max_ticks {args.max_ticks}, "
          f"held-out seeds {seeds[0]}..{seeds[-1]}")
    print("| skill | success (Wilson 95%) | actions per solved task |")
    print("|---|---|---|")
    for name, res in sides.items():
        print(f"| {name} | {_rate(res)} | {_per_solve(res)} |")
    print(f"paired: {d.wins} wins, {d.losses} losses, {d.ties} ties, p={d.p_value:.3g}")
    return out


def swarm_opt(args: argparse.Namespace) -> dict[str, Any]:
    """The optimizer on the scenario itself: the 135M plays the episodes and writes the
    edits; initial and best skill on the held-out test seeds."""
    env = SwarmSkillEnv(SwarmTasksConfig(scenario=args.scenario, workers=args.workers,
                                         max_ticks=args.max_ticks, first_seed=args.first_seed,
                                         train=args.train, val=args.val, test=args.seeds))
    cfg = SkillOptConfig(epochs=1, batch_size=args.train, minibatch_size=2, edit_budget=2,
                         gate_alpha=0.25, gate_min_tasks=3, concurrency=1, retries=1)
    server, client = start_server(args.threads)
    t0 = time.time()
    try:
        run = SkillOptimizer(env, target=client, optimizer=client, run_dir=args.run_dir,
                             config=cfg, on_stage=lambda s, st: print(
                                 f"step {s}: {st} ({time.time() - t0:.0f}s)", flush=True)
                             ).train()
    finally:
        server.stop()

    def test_of(skill: str) -> list[TaskResult]:
        got = run.scores.get(skill_hash(skill), {})
        return [Trajectory.from_dict(got[str(t)]).result() for t in env.tasks(Split.TEST)]

    initial, best = test_of(run.initial), test_of(run.best)
    d = gate(initial, best, GateConfig(alpha=0.05, min_tasks=1))
    kinds: dict[str, int] = {}
    for h in run.history:
        for f in h["failures"]:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    print(f"\n{env.name}, {args.workers} LLM worker(s), max_ticks {args.max_ticks}; train "
          f"{list(env.tasks(Split.TRAIN))}, val {list(env.tasks(Split.VAL))}, held-out test "
          f"{list(env.tasks(Split.TEST))}; {run.step} step(s), {time.time() - t0:.0f}s")
    print("| skill | test success (Wilson 95%) | actions per solved task |")
    print("|---|---|---|")
    print(f"| initial (empty) | {_rate(initial)} | {_per_solve(initial)} |")
    print(f"| optimized (best, step {run.best_step}) | {_rate(best)} | {_per_solve(best)} |")
    print(f"paired: {d.wins} wins, {d.losses} losses, {d.ties} ties, p={d.p_value:.3g}")
    print(f"calls {run.usage.calls}, tokens {run.usage.tokens}; failures by kind {kinds}; "
          f"actions of the steps: {[h.get('action') for h in run.history]}")
    print(f"best skill: {run.best!r}")
    return {"initial": [list(r) for r in initial], "best": [list(r) for r in best],
            "best_skill": run.best, "paired": d.to_dict(), "calls": run.usage.calls,
            "tokens": run.usage.tokens, "failures": kinds, "history": run.history}


def _exact(trajs: Sequence[Trajectory]) -> list[TaskResult]:
    return [t.result() for t in trajs]


def qa(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "qa.jsonl"
    data.write_text("".join(json.dumps(it) + "\n" for it in qa_items()))
    env = QAEnv.from_config(QAConfig(path=str(data), max_tokens=16))
    server, client = start_server(args.threads)
    cfg = SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2, edit_budget=2,
                         gate_alpha=0.25, gate_min_tasks=5, concurrency=1, retries=1)
    try:
        t0 = time.time()
        run = SkillOptimizer(env, target=client, optimizer=client, run_dir=run_dir / "run",
                             config=cfg,
                             on_stage=lambda s, st: print(f"step {s}: {st}", flush=True)).train()
        wall = time.time() - t0
        hands = [rollout(env, env.tasks(Split.TEST), sk, client, concurrency=1)
                 for sk in QA_SKILLS]
    finally:
        server.stop()

    def test_of(skill: str) -> list[TaskResult]:
        got = run.scores.get(skill_hash(skill), {})
        return [Trajectory.from_dict(got[str(t)]).result() for t in env.tasks(Split.TEST)
                if str(t) in got]

    initial, best = test_of(run.initial), test_of(run.best)
    f1 = {"initial": run.test["initial"]["f1"], "best": run.test["best"]["f1"]}
    kinds: dict[str, int] = {}
    for h in run.history:
        for f in h["failures"]:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    print(f"\nQA ({len(env.tasks(Split.TRAIN))} train / {len(env.tasks(Split.VAL))} val / "
          f"{len(env.tasks(Split.TEST))} test), SmolLM2-135M as target and optimizer, "
          f"{run.step} steps, {wall:.0f}s")
    print("| skill | test exact (Wilson 95%) | mean token F1 |")
    print("|---|---|---|")
    print(f"| initial (empty) | {_rate(initial)} | {f1['initial']:.2f} |")
    print(f"| optimized (best, step {run.best_step}) | {_rate(best)} | {f1['best']:.2f} |")
    d = gate(initial, best, GateConfig(alpha=0.05, min_tasks=1))
    paired = [d.to_dict()]
    for sk, hand in zip(QA_SKILLS, hands, strict=True):
        mean_f1 = sum(t.score for t in hand) / len(hand)
        print(f"| hand-written: {sk!r} | {_rate(_exact(hand))} | {mean_f1:.2f} |")
        paired.append(gate(initial, _exact(hand), GateConfig(alpha=0.05, min_tasks=1)).to_dict())
    print("paired against the initial skill (wins, losses, p): "
          + "; ".join(f"{p['wins']}, {p['losses']}, {p['p_value']:.3g}" for p in paired))
    print(f"calls {run.usage.calls}, tokens {run.usage.tokens}; failures by kind {kinds}; "
          f"accepted {len(run.versions) - 1}")
    print(f"best skill: {run.best!r}")
    answers = [t.text.split("Model answer: ", 1)[1].split("\n", 1)[0] for t in hands[1][:3]]
    print(f"replies with the example skill: {answers}")
    return {"initial": [list(r) for r in initial], "best": [list(r) for r in best],
            "hand": [[list(r) for r in _exact(h)] for h in hands], "best_skill": run.best,
            "calls": run.usage.calls, "tokens": run.usage.tokens, "failures": kinds,
            "f1": f1, "paired": paired}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("swarm")
    s.add_argument("--scenario", default="troubleshooting")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--max-ticks", type=int, default=15)
    s.add_argument("--seeds", type=int, default=6)
    s.add_argument("--first-seed", type=int, default=70_000)
    s.add_argument("--skill", default="", help="a file with the skill (default: built in)")
    o = sub.add_parser("swarm-opt")
    o.add_argument("--scenario", default="troubleshooting")
    o.add_argument("--workers", type=int, default=1)
    o.add_argument("--max-ticks", type=int, default=12)
    o.add_argument("--train", type=int, default=2)
    o.add_argument("--val", type=int, default=4)
    o.add_argument("--seeds", type=int, default=6, help="held-out test seeds")
    o.add_argument("--first-seed", type=int, default=80_000)
    o.add_argument("--run-dir", default="/tmp/skills-real-swarm-opt")
    q = sub.add_parser("qa")
    q.add_argument("--run-dir", default="/tmp/skills-real-qa")
    for p in (s, o, q):
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--json", default="", help="also write the numbers to this file")
    args = ap.parse_args()
    result = {"swarm": swarm, "swarm-opt": swarm_opt, "qa": qa}[args.what](args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
