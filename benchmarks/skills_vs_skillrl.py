"""Skill optimization: ours against skillrl 1.0.0 and gepa 0.1.4, same tasks, same scripted
clients, same budgets, in one run.

    .venv/bin/python benchmarks/skills_vs_skillrl.py [--seeds 8] [--json]

Every optimizer sees the scripted world of ``swarmlearn.skills._fake``: a QA
set whose tasks the scripted target solves only when the skill states the rule
of the task's category, and a scripted optimizer that proposes those rules when
it reads failed tasks and a harmful edit when it reads solved ones (and does
skillrl's LLM merge and ranking faithfully). Both clients are pure functions
of the request, so the comparison is exact, not a timing: held-out (test) exact
match, LLM calls and tokens (whitespace words) with their ratio to skillrl's.

Then the kill/resume check: each optimizer is killed at the Nth target call
(an exception nothing catches, standing for kill -9 between two checkpoints),
built again on the same run directory and run to the end; the final skill and
the history must equal an uninterrupted run's (ours also the call and token
counters). Then an outage: the target down after its 40th call.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from swarmlearn.errors import BackendError, BackendUnavailable
from swarmlearn.llm import (
    Completion,
    CompletionRequest,
    Message,
    ScriptedLLMClient,
    run_batch,
)
from swarmlearn.skills import (
    QAConfig,
    QAEnv,
    SkillOptConfig,
    SkillOptimizer,
    SkillRun,
    Split,
    apply_edits,
)
from swarmlearn.skills._edits import Source
from swarmlearn.skills._fake import ScriptedWorld
from swarmlearn.skills._reflect import parse_edits

KILL_AT = (3, 17, 40, 71)


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, nothing catches it."""


class Counter:
    """Calls and tokens of one side, whichever client contract it uses, and calls per stage
    (our stage names: rollout, validate, test for the target; reflect, merge, rank)."""

    def __init__(self) -> None:
        self.calls = self.tokens = 0
        self.stages: dict[str, int] = {}

    def count(self, c: Completion, stage: str = "") -> Completion:
        self.calls += 1
        self.tokens += c.prompt_tokens + c.completion_tokens
        if stage:
            self.stages[stage] = self.stages.get(stage, 0) + 1
        return c


#: skillrl's optimizer stages under our names (its merge is an LLM call; ours is not)
PEER_STAGES = {"analyst": "reflect", "merge": "merge", "ranking": "rank"}
SPLIT_STAGES = {Split.TRAIN: "rollout", Split.VAL: "validate", Split.TEST: "test"}


def target_stages(env: QAEnv, w: ScriptedWorld) -> Callable[[CompletionRequest], str]:
    """The stage of a target call, from the split of the task it asks (read off the
    question, as the scripted target reads it)."""
    split = {t: s for s in Split for t in env.tasks(s)}
    task = {it["question"]: int(it["id"]) for it in w.items}

    def stage(request: CompletionRequest) -> str:
        q = request.messages[-1].content.split("Question: ", 1)[1].split("\n", 1)[0]
        return SPLIT_STAGES[split[task[q]]]

    return stage


class PeerClient:
    """skillrl's client contract (``chat``) over a scripted client; counts calls and tokens
    in ``counter`` (all calls, per stage with ``stage_of`` for the target) and ``own``
    (this client's)."""

    def __init__(self, client: ScriptedLLMClient, counter: Counter,
                 stage_of: Callable[[CompletionRequest], str] | None = None) -> None:
        self.client, self.counter, self.own = client, counter, Counter()
        self.stage_of = stage_of
        self.model = "scripted"

    def complete(self, request: CompletionRequest, stage: str = "") -> Completion:
        stage = stage or (self.stage_of(request) if self.stage_of else "")
        return self.own.count(self.counter.count(self.client.complete(request), stage))

    def complete_many(self, requests: Sequence[CompletionRequest], *,
                      concurrency: int = 4) -> list[Completion | BackendError]:
        return run_batch(self.complete, requests, concurrency=concurrency)

    def chat(self, *, system: str, user: str, stage: str = "",
             **_: Any) -> tuple[str, dict[str, int]]:
        purpose = "rank" if stage == "ranking" else ""
        if stage == "analyst":  # skillrl's section names, as our scripted optimizer reads them
            user = user.replace("Failed Trajectories", "## Failed tasks")
        c = self.complete(CompletionRequest(messages=(Message.system(system),
                                                      Message.user(user)), purpose=purpose),
                          PEER_STAGES.get(stage, stage))
        text = c.text.replace('"anchor"', '"target"').replace('"support"', '"support_count"')
        return text, {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                      "total_tokens": c.prompt_tokens + c.completion_tokens}


def peer_env(env: QAEnv) -> Any:
    from skillrl.envs.base import SkillEnv
    from skillrl.types import RolloutResult

    class Env(SkillEnv):
        name = "scripted"

        def get_items(self, split: str) -> list[dict[str, Any]]:
            return [{"id": t} for t in env.tasks(Split(split))]

        def rollout_one(self, *, item: dict[str, Any], skill: str, target_client: Any) -> Any:
            t = env.run(int(item["id"]), skill, target_client)
            return RolloutResult(id=str(t.task), hard=int(t.solved), soft=t.score,
                                 question=t.text)

    return Env()


def run_peer(env: QAEnv, w: ScriptedWorld, out: Path, cfg: SkillOptConfig,
             target: Callable[[CompletionRequest], str] | None = None
             ) -> tuple[dict[str, Any], Counter]:
    """skillrl 1.0.0 with our knobs where it has them; the summary (with
    ``target_calls``) and its counter."""
    from skillrl.config import SkillOptConfig as PeerConfig
    from skillrl.trainer import SkillOptTrainer

    n = Counter()
    pc = PeerConfig(num_epochs=cfg.epochs, batch_size=cfg.batch_size,
                    minibatch_size=cfg.minibatch_size, merge_batch_size=cfg.merge_fan_in,
                    edit_budget=cfg.edit_budget, min_edit_budget=cfg.min_edit_budget,
                    lr_scheduler=cfg.schedule.value, workers=1, seed=cfg.seed,
                    out_root=str(out), verbose=False)
    tc = PeerClient(ScriptedLLMClient(default=target or w.target), n, target_stages(env, w))
    summary = SkillOptTrainer(
        config=pc, env=peer_env(env),
        optimizer_client=PeerClient(ScriptedLLMClient(default=w.optimizer), n),  # type: ignore[arg-type]
        target_client=tc).train()  # type: ignore[arg-type]
    return {**summary, "target_calls": tc.own.calls}, n


def run_ours(env: QAEnv, w: ScriptedWorld, out: Path, cfg: SkillOptConfig,
             target: Callable[[CompletionRequest], str] | None = None) -> SkillRun:
    return SkillOptimizer(env, target=ScriptedLLMClient(default=target or w.target),
                          optimizer=ScriptedLLMClient(default=w.optimizer), run_dir=out,
                          config=cfg).train()


# -- gepa 0.1.4 -------------------------------------------------------------------------
_FENCE = re.compile(r"```\n?(.*?)```", re.S)


def gepa_reflection(w: ScriptedWorld, n: Counter) -> Callable[[str], str]:
    """gepa's reflection LM over the same scripted optimizer: it reads gepa's prompt (the
    current instruction and the examples), asks the scripted optimizer for edits on the
    failed examples and on the solved ones, exactly as ours and skillrl's analysts do, and
    returns the edited instruction in a ``` block, as gepa expects. One call."""
    opt = ScriptedLLMClient(default=w.optimizer)

    def lm(prompt: str | list[dict[str, Any]]) -> str:
        text = prompt if isinstance(prompt, str) else str(prompt[-1]["content"])
        blocks = _FENCE.findall(text)
        current, examples = blocks[0].strip(), blocks[1] if len(blocks) > 1 else ""
        parts = re.split(r"^# Example \d+\n", examples, flags=re.M)[1:]
        failed = [p for p in parts if "Exact match: False" in p]
        solved = [p for p in parts if "Exact match: True" in p]
        edits = []
        for label, group, source in (("## Failed tasks", failed, Source.FAILURE),
                                     ("## Solved tasks", solved, Source.SUCCESS)):
            if group:
                reply = opt.complete(CompletionRequest(messages=(
                    Message.system("gepa reflection"),
                    Message.user(f"{label}\n" + "\n".join(group)))))
                edits += parse_edits(reply.text, source, len(group), 8, "gepa")[0]
        answer = "```\n" + apply_edits(current, edits)[0].strip() + "\n```"
        n.calls += 1  # one call of gepa's: its prompt and this answer, in words
        n.tokens += len(text.split()) + len(answer.split())
        n.stages["reflect"] = n.stages.get("reflect", 0) + 1
        return answer

    return lm


def run_gepa(env: QAEnv, w: ScriptedWorld, out: Path | None, cfg: SkillOptConfig,
             max_metric_calls: int, target: Callable[[CompletionRequest], str] | None = None
             ) -> tuple[dict[str, Any], Counter]:
    import gepa.api
    from gepa.core.adapter import EvaluationBatch

    n = Counter()
    client = PeerClient(ScriptedLLMClient(default=target or w.target), n,
                        target_stages(env, w))

    class Adapter:
        propose_new_texts = None

        def evaluate(self, batch: list[dict[str, int]], candidate: dict[str, str],
                     capture_traces: bool = False) -> Any:
            trajs = [env.run(item["id"], candidate["skill"], client) for item in batch]
            return EvaluationBatch(outputs=[t.text for t in trajs],
                                   scores=[t.score for t in trajs],
                                   trajectories=trajs if capture_traces else None)

        def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                    components_to_update: list[str]) -> Any:
            return {c: [{"Feedback": t.text} for t in eval_batch.trajectories]
                    for c in components_to_update}

    items = {s: [{"id": t} for t in env.tasks(s)] for s in Split}
    result: Any = gepa.api.optimize(seed_candidate={"skill": ""}, trainset=items[Split.TRAIN],
                           valset=items[Split.VAL], adapter=Adapter(),  # type: ignore[arg-type]
                           reflection_lm=gepa_reflection(w, n),  # type: ignore[arg-type]
                           reflection_minibatch_size=cfg.batch_size,
                           max_metric_calls=max_metric_calls, seed=cfg.seed,
                           run_dir=None if out is None else str(out),
                           display_progress_bar=False, raise_on_exception=True,
                           logger=_Quiet())
    best = str(result.best_candidate["skill"])
    test = env.tasks(Split.TEST)
    init = [env.run(t, "", client).solved for t in test]
    final = [env.run(t, best, client).solved for t in test]
    return {"best": best, "initial_exact": sum(init) / len(test),
            "exact": sum(final) / len(test), "candidates": len(result.candidates)}, n


class _Quiet:
    def log(self, message: str) -> None:
        pass


# -- the table --------------------------------------------------------------------------
def _ours_stages(r: SkillRun) -> dict[str, int]:
    return {k: v.calls for k, v in r.usage.stages.items()}


def comparison(cfg: SkillOptConfig, seed: int = 0) -> list[dict[str, Any]]:
    """The table: skillrl, gepa and our variants on the scripted world whose QA split and
    optimizer seeds are ``seed``."""
    w = ScriptedWorld(categories=6, per_category=6)
    cfg = dataclasses.replace(cfg, seed=seed)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        qa = QAConfig(path=str(w.write(Path(d) / "qa.jsonl")), seed=seed)
        env = QAEnv.from_config(qa)
        peer, pn = run_peer(env, w, Path(d) / "peer", cfg)
        rows.append({"name": "skillrl 1.0.0", "initial": peer["baseline_test_hard"],
                     "exact": peer["test_hard"], "calls": pn.calls, "tokens": pn.tokens,
                     "stages": pn.stages})
        try:  # gepa's rollout budget: skillrl's target calls but its final test
            budget = peer["target_calls"] - 2 * len(env.tasks(Split.TEST))
            g, gn = run_gepa(env, w, None, cfg, max_metric_calls=budget)
            rows.append({"name": f"gepa 0.1.4 (max_metric_calls={budget})",
                         "initial": g["initial_exact"], "exact": g["exact"],
                         "calls": gn.calls, "tokens": gn.tokens, "stages": gn.stages})
        except ImportError:
            pass
        floorless = QAEnv.from_config(qa)
        floorless.min_cost = None  # the gate cannot tell an unwinnable task; no early stop
        variants: tuple[tuple[str, QAEnv, dict[str, Any]], ...] = (
            ("swarmlearn", env, {}),
            ("swarmlearn, lowest cost unknown (min_cost=None)", floorless, {}),
            ("swarmlearn, a call per minibatch", env, {"pack_reflections": False}),
            ("swarmlearn, no curtailing", env, {"curtail": False}),
            ("swarmlearn, pool", env, {"pool": True}))
        for name, e, extra in variants:
            r = run_ours(e, w, Path(d) / name, dataclasses.replace(cfg, **extra))
            rows.append({"name": name, "initial": r.test["initial"]["exact"],
                         "exact": r.test["best"]["exact"], "calls": r.usage.calls,
                         "tokens": r.usage.tokens, "stages": _ours_stages(r)})
    return rows


def seeds(cfg: SkillOptConfig, n: int) -> list[dict[str, Any]]:
    """skillrl and ours (default options) on ``n`` seeds of the world (splits and every
    seeded choice differ), each pair in the same run."""
    out = []
    for seed in range(n):
        w = ScriptedWorld(categories=6, per_category=6)
        c = dataclasses.replace(cfg, seed=seed)
        with tempfile.TemporaryDirectory() as d:
            env = QAEnv.from_config(QAConfig(path=str(w.write(Path(d) / "qa.jsonl")),
                                             seed=seed))
            peer, pn = run_peer(env, w, Path(d) / "peer", c)
            r = run_ours(env, w, Path(d) / "ours", c)
        out.append({"seed": seed, "skillrl_exact": peer["test_hard"], "skillrl_calls": pn.calls,
                    "skillrl_tokens": pn.tokens, "exact": r.test["best"]["exact"],
                    "calls": r.usage.calls, "tokens": r.usage.tokens})
    return out


def _same_ours(a: SkillRun, b: SkillRun) -> bool:
    keys = ("best", "current", "history", "rejected", "step", "usage", "test", "status")
    da, db = a.to_dict(), b.to_dict()
    return all(da[k] == db[k] for k in keys)


def _peer_history(out: Path) -> list[dict[str, Any]]:
    rows = json.loads((out / "history.json").read_text())
    return [{k: v for k, v in h.items() if k not in ("timing", "wall_time_s")} for h in rows]


def _dying(w: ScriptedWorld, at: int) -> Callable[[CompletionRequest], str]:
    n = {"calls": 0}

    def target(request: CompletionRequest) -> str:
        n["calls"] += 1
        if n["calls"] == at:
            raise Killed
        return w.target(request)

    return target


def kill_resume(cfg: SkillOptConfig, points: tuple[int, ...] = KILL_AT) -> list[dict[str, Any]]:
    """Per kill point: whether each optimizer, resumed, ends as an uninterrupted run."""
    w = ScriptedWorld(categories=6, per_category=6)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        env = QAEnv.from_config(QAConfig(path=str(w.write(root / "qa.jsonl"))))
        peer, _ = run_peer(env, w, root / "peer-whole", cfg)
        whole = run_ours(env, w, root / "ours-whole", cfg)
        budget = peer["target_calls"] - 2 * len(env.tasks(Split.TEST))
        g_whole, _ = run_gepa(env, w, root / "gepa-whole", cfg, budget)
        for at in points:
            row: dict[str, Any] = {"kill_at": at}
            out = root / f"peer-{at}"
            try:
                run_peer(env, w, out, cfg, target=_dying(w, at))
            except Killed:
                pass
            run_peer(env, w, out, cfg)
            ph, pw = _peer_history(out), _peer_history(root / "peer-whole")
            row["skillrl"] = ((out / "best_skill.md").read_text()
                              == (root / "peer-whole" / "best_skill.md").read_text()
                              and ph == pw)
            row["skillrl_steps"] = f"{len(ph)} (uninterrupted {len(pw)})"
            out = root / f"ours-{at}"
            try:
                run_ours(env, w, out, cfg, target=_dying(w, at))
            except Killed:
                pass
            row["swarmlearn"] = _same_ours(run_ours(env, w, out, cfg), whole)
            out = root / f"gepa-{at}"
            try:
                run_gepa(env, w, out, cfg, budget, target=_dying(w, at))
            except Killed:
                pass
            g, _ = run_gepa(env, w, out, cfg, budget)
            row["gepa"] = g["best"] == g_whole["best"] and g["candidates"] == g_whole[
                "candidates"]
            rows.append(row)
    return rows


def outage(cfg: SkillOptConfig) -> tuple[str, str]:
    """The target down for every call after the 40th: what each optimizer records."""
    w = ScriptedWorld(categories=6, per_category=6)

    def flaky_after(limit: int) -> Callable[[CompletionRequest], str]:
        n = {"calls": 0}

        def target(request: CompletionRequest) -> str:
            n["calls"] += 1
            if n["calls"] > limit:
                raise BackendUnavailable("connection refused")
            return w.target(request)

        return target

    with tempfile.TemporaryDirectory() as d:
        env = QAEnv.from_config(QAConfig(path=str(w.write(Path(d) / "qa.jsonl"))))
        peer, _ = run_peer(env, w, Path(d) / "peer", cfg, target=flaky_after(40))
        theirs = (f"finished, test exact {peer['test_hard']:.3f} (every call after the 40th "
                  "scored 0.0)")
        try:
            run_ours(env, w, Path(d) / "ours", dataclasses.replace(cfg, retry_pause_s=0.0),
                     target=flaky_after(40))
            ours = "finished (unexpected)"
        except BackendError as exc:
            ours = f"stopped with {type(exc).__name__} (checkpointed, resumable), no task scored"
    return theirs, ours


BENCH = SkillOptConfig(epochs=2, batch_size=4, minibatch_size=2, edit_budget=3,
                       gate_alpha=0.25, gate_min_tasks=5, concurrency=1)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the outage's retry warnings are expected
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    ap.add_argument("--seeds", type=int, default=8,
                    help="also compare skillrl and ours on this many seeds of the world")
    args = ap.parse_args()
    rows, kills = comparison(BENCH), kill_resume(BENCH)
    theirs, ours = outage(BENCH)
    per_seed = seeds(BENCH, args.seeds)
    if args.json:
        print(json.dumps({"rows": rows, "kill_resume": kills, "seeds": per_seed,
                          "outage": {"skillrl": theirs, "swarmlearn": ours}}))
        return
    base = rows[0]
    print("| | test exact (initial → best) | LLM calls | tokens |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['initial']:.3f} → {r['exact']:.3f} | {r['calls']} "
              f"({r['calls'] / base['calls']:.2f}×) | {r['tokens']} "
              f"({r['tokens'] / base['tokens']:.2f}×) |")
    print()
    shown = [r for r in rows if r["name"] in ("skillrl 1.0.0", "swarmlearn")]
    stages = ("rollout", "reflect", "merge", "rank", "validate", "test")
    print("| calls per stage | " + " | ".join(stages) + " |")
    print("|---|" + "---|" * len(stages))
    for r in shown:
        print(f"| {r['name']} | " + " | ".join(str(r["stages"].get(k, 0)) for k in stages)
              + " |")
    print()
    print("| killed at target call | skillrl resumed = uninterrupted | skillrl steps "
          "| gepa: same best and candidates | swarmlearn: same skill, history, counters |")
    print("|---|---|---|---|---|")
    for k in kills:
        print(f"| {k['kill_at']} | {k['skillrl']} | {k['skillrl_steps']} | {k['gepa']} "
              f"| {k['swarmlearn']} |")
    print()
    print(f"outage, skillrl: {theirs}")
    print(f"outage, swarmlearn: {ours}")
    if per_seed:
        print()
        print("| seed | skillrl test exact | ours test exact | skillrl calls | ours calls "
              "(ratio) | skillrl tokens | ours tokens (ratio) |")
        print("|---|---|---|---|---|---|---|")
        for r in per_seed:
            print(f"| {r['seed']} | {r['skillrl_exact']:.3f} | {r['exact']:.3f} | "
                  f"{r['skillrl_calls']} | {r['calls']} ({r['calls'] / r['skillrl_calls']:.2f}×)"
                  f" | {r['skillrl_tokens']} | {r['tokens']} "
                  f"({r['tokens'] / r['skillrl_tokens']:.2f}×) |")
        tot = {k: sum(r[k] for r in per_seed) for k in ("skillrl_calls", "calls",
                                                         "skillrl_tokens", "tokens")}
        wins = sum(r["exact"] >= r["skillrl_exact"] for r in per_seed)
        print(f"| all {len(per_seed)} | ours ≥ skillrl on {wins} | | {tot['skillrl_calls']} | "
              f"{tot['calls']} ({tot['calls'] / tot['skillrl_calls']:.2f}×) | "
              f"{tot['skillrl_tokens']} | {tot['tokens']} "
              f"({tot['tokens'] / tot['skillrl_tokens']:.2f}×) |")


if __name__ == "__main__":
    main()
