"""Skill optimization: ours against skillrl 1.0.0, same tasks, same scripted clients.

    .venv/bin/python benchmarks/skills.py

Both optimizers see the scripted world of ``swarmlearn.skills._fake``: a
target that solves a task only when the skill states its category's rule, an
optimizer that proposes those rules on failures and a harmful edit on
successes. Prints held-out (test) exact match, LLM calls and tokens, and the
ratio. Deterministic: the comparison is exact, not a timing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from swarmlearn.errors import BackendError
from swarmlearn.llm import CompletionRequest, Message, ScriptedLLMClient
from swarmlearn.skills import QAConfig, QAEnv, SkillOptConfig, SkillOptimizer, Split
from swarmlearn.skills._fake import ScriptedWorld


class PeerClient:
    """skillrl's client contract over a swarmlearn client; counts calls and tokens."""

    def __init__(self, client: ScriptedLLMClient, purpose: str = "") -> None:
        self.client, self.purpose = client, purpose
        self.calls = self.tokens = 0
        self.model = "scripted"

    def chat(self, *, system: str, user: str, stage: str = "",
             **_: Any) -> tuple[str, dict[str, int]]:
        purpose = "rank" if stage == "ranking" else self.purpose
        if stage in ("analyst",) and "Successful Trajectories" in user:
            user = user.replace("Successful Trajectories", "Solved tasks")
        if stage == "analyst":
            user = user.replace("Failed Trajectories", "## Failed tasks")
        req = CompletionRequest(messages=(Message.system(system), Message.user(user)),
                                purpose=purpose)
        c = self.client.complete(req)
        self.calls += 1
        self.tokens += c.prompt_tokens + c.completion_tokens
        text = c.text.replace('"anchor"', '"target"').replace('"support"', '"support_count"')
        return text, {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                      "total_tokens": c.prompt_tokens + c.completion_tokens}


def peer_env(env: QAEnv) -> Any:
    from skillrl.envs.base import SkillEnv
    from skillrl.types import RolloutResult

    class Env(SkillEnv):  # type: ignore[misc]
        name = "scripted"

        def get_items(self, split: str) -> list[dict[str, Any]]:
            return [{"id": t} for t in env.tasks(Split(split))]

        def rollout_one(self, *, item: dict[str, Any], skill: str,
                        target_client: Any) -> Any:
            class Adapter:
                def complete(self, request: CompletionRequest) -> Any:
                    c = target_client.client.complete(request)
                    target_client.calls += 1
                    target_client.tokens += c.prompt_tokens + c.completion_tokens
                    return c

            t = env.run(int(item["id"]), skill, Adapter())  # type: ignore[arg-type]
            return RolloutResult(id=str(t.task), hard=int(t.solved), soft=t.score,
                                 question=t.text)

    return Env()


def run_peer(env: QAEnv, w: ScriptedWorld, out: Path, cfg: SkillOptConfig,
             target: Any = None) -> tuple[dict[str, Any], PeerClient, PeerClient]:
    from skillrl.config import SkillOptConfig as PeerConfig
    from skillrl.trainer import SkillOptTrainer

    t = target or PeerClient(ScriptedLLMClient(default=w.target))
    o = PeerClient(ScriptedLLMClient(default=w.optimizer))
    pc = PeerConfig(num_epochs=cfg.epochs, batch_size=cfg.batch_size,
                    minibatch_size=cfg.minibatch_size, merge_batch_size=cfg.merge_fan_in,
                    edit_budget=cfg.edit_budget, min_edit_budget=cfg.min_edit_budget,
                    lr_scheduler=cfg.schedule.value, workers=1, seed=cfg.seed,
                    out_root=str(out), verbose=False)
    summary = SkillOptTrainer(config=pc, env=peer_env(env), optimizer_client=o,
                              target_client=t).train()
    return summary, t, o


def main() -> None:
    w = ScriptedWorld(categories=6, per_category=6)
    cfg = SkillOptConfig(epochs=2, batch_size=4, minibatch_size=2, edit_budget=3,
                         gate_alpha=0.25, gate_min_tasks=5, concurrency=1)
    with tempfile.TemporaryDirectory() as d:
        env = QAEnv.from_config(QAConfig(path=str(w.write(Path(d) / "qa.jsonl"))))
        ours = SkillOptimizer(env, target=ScriptedLLMClient(default=w.target),
                              optimizer=ScriptedLLMClient(default=w.optimizer),
                              run_dir=Path(d) / "ours", config=cfg).train()
        peer, pt, po = run_peer(env, w, Path(d) / "peer", cfg)
        pool = SkillOptimizer(env, target=ScriptedLLMClient(default=w.target),
                              optimizer=ScriptedLLMClient(default=w.optimizer),
                              run_dir=Path(d) / "pool",
                              config=SkillOptConfig(**{**_as_kwargs(cfg), "pool": True})).train()
    calls_p, tokens_p = pt.calls + po.calls, pt.tokens + po.tokens
    print("| | test exact (initial → best) | LLM calls | tokens |")
    print("|---|---|---|---|")
    print(f"| skillrl 1.0.0 | {peer['baseline_test_hard']:.3f} → {peer['test_hard']:.3f} "
          f"| {calls_p} | {tokens_p} |")
    for name, r in (("swarmlearn", ours), ("swarmlearn, pool", pool)):
        print(f"| {name} | {r.test['initial']['exact']:.3f} → {r.test['best']['exact']:.3f} "
              f"| {r.usage.calls} ({r.usage.calls / calls_p:.2f}×) "
              f"| {r.usage.tokens} ({r.usage.tokens / tokens_p:.2f}×) |")
    outage_demo(w, cfg)


def _as_kwargs(cfg: SkillOptConfig) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def outage_demo(w: ScriptedWorld, cfg: SkillOptConfig) -> None:
    """The target down for every call after the 40th: what each optimizer records."""
    from swarmlearn.errors import BackendUnavailable

    n = {"calls": 0}

    def flaky(request: CompletionRequest) -> str:
        n["calls"] += 1
        if n["calls"] > 40:
            raise BackendUnavailable("connection refused")
        return w.target(request)

    with tempfile.TemporaryDirectory() as d:
        env = QAEnv.from_config(QAConfig(path=str(w.write(Path(d) / "qa.jsonl"))))
        peer, _, _ = run_peer(env, w, Path(d) / "peer", cfg,
                              target=PeerClient(ScriptedLLMClient(default=flaky)))
        print(f"outage, skillrl: finished, test exact {peer['test_hard']:.3f} "
              f"(every call after the 40th scored 0.0)")
        n["calls"] = 0
        try:
            SkillOptimizer(env, target=ScriptedLLMClient(default=flaky),
                           optimizer=ScriptedLLMClient(default=w.optimizer),
                           run_dir=Path(d) / "ours",
                           config=SkillOptConfig(**{**_as_kwargs(cfg), "retry_pause_s": 0.0})
                           ).train()
        except BackendError as exc:
            print(f"outage, swarmlearn: stopped with {type(exc).__name__} (checkpointed, "
                  "resumable), no task scored")


if __name__ == "__main__":
    main()
