"""The swarm scenarios as a skill environment (real episodes of LLM workers with a scripted
target), the skill as a lifecycle kind, and a promoted skill reaching running workers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from swarmlearn.core.events import EventIds
from swarmlearn.core.manager import RuleManager
from swarmlearn.core.swarm import Swarm
from swarmlearn.errors import ArtifactError, BackendError, BackendUnavailable
from swarmlearn.lifecycle import (
    ArtifactKind,
    ArtifactState,
    GateConfig,
    Lifecycle,
    LifecycleConfig,
    ProduceContext,
    Produced,
    run_gate,
)
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.llm.worker import LLMWorker
from swarmlearn.session import build_env
from swarmlearn.skills import (
    SKILL_KIND,
    LiveSkill,
    SkillKind,
    SkillOptConfig,
    SkillOptimizer,
    Split,
    decode_skill,
    encode_skill,
)
from swarmlearn.skills._swarm import SwarmSkillEnv, SwarmTasksConfig
from swarmlearn.store import SqlStore

RULE = "Always take the first listed action."
_MB = re.compile(r"^## Minibatch (\w+): (Failed|Solved) tasks", re.M)


def target(request: CompletionRequest) -> str:
    """A worker model that follows the skill's one rule, else picks by its seed."""
    system, user = request.messages[0].content, request.messages[-1].content
    labels = [line[2:].split("  [")[0] for line in
              user.split("Available actions:\n", 1)[1].splitlines() if line.startswith("- ")]
    pick = 0 if RULE.lower() in system.lower() else (request.seed or 0) % len(labels)
    return json.dumps({"action": labels[pick]})


def optimizer(request: CompletionRequest) -> str:
    """Proposes the rule on failed episodes, nothing on solved ones."""
    found = _MB.findall(request.messages[-1].content)
    return json.dumps({"minibatches": {mb: ([{"op": "append", "content": RULE}]
                                            if label == "Failed" else []) for mb, label in found}})


@pytest.fixture
def env() -> SwarmSkillEnv:
    return SwarmSkillEnv(SwarmTasksConfig(scenario="code_exploration", workers=2, train=6,
                                          val=12, test=12))


def test_an_episode_is_a_trajectory_and_the_skill_reaches_the_prompt(
        env: SwarmSkillEnv) -> None:
    client = ScriptedLLMClient(default=target)
    t = env.run(env.tasks(Split.TRAIN)[0], RULE, client)
    assert t.solved and t.cost > 0 and t.score == 1.0
    assert "Outcome: success" in t.text and "\nt0 w0: " in t.text
    decide = [r for r in client.requests if r.purpose == "decide"]
    assert len(decide) >= t.cost and all(f"# Skill\n{RULE}" in r.messages[0].content
                                         for r in decide)


def test_an_outage_in_an_episode_raises_it_is_not_a_failed_task(env: SwarmSkillEnv) -> None:
    calls = {"n": 0}

    def flaky(request: CompletionRequest) -> str:
        calls["n"] += 1
        if calls["n"] == 5:
            raise BackendUnavailable("connection refused")
        return target(request)

    with pytest.raises(BackendError, match=r"1 target calls failed.*not scored"):
        env.run(env.tasks(Split.TRAIN)[0], "", ScriptedLLMClient(default=flaky))


def test_optimizing_the_workers_skill_raises_success(env: SwarmSkillEnv,
                                                     tmp_path: Path) -> None:
    cfg = SkillOptConfig(epochs=1, batch_size=3, minibatch_size=2, gate_alpha=0.1,
                         gate_min_tasks=5, concurrency=2)
    run = SkillOptimizer(env, target=ScriptedLLMClient(default=target),
                         optimizer=ScriptedLLMClient(default=optimizer), run_dir=tmp_path / "r",
                         config=cfg).train()
    assert RULE in run.best
    assert run.test["best"]["exact"] > run.test["initial"]["exact"]
    assert [v["step"] for v in run.versions] == [0, run.best_step]  # versions with lineage
    assert run.versions[1]["parent"] == run.versions[0]["hash"]


def test_the_skill_kind_produces_is_gated_and_reaches_running_workers(
        env: SwarmSkillEnv, tmp_path: Path) -> None:
    st = SqlStore(f"sqlite:///{tmp_path}/s.db")
    kind = SkillKind(env, target=ScriptedLLMClient(default=target),
                     optimizer=ScriptedLLMClient(default=optimizer), run_root=tmp_path / "runs",
                     config=SkillOptConfig(epochs=1, batch_size=3, minibatch_size=2,
                                           gate_alpha=0.1, gate_min_tasks=5))
    assert isinstance(kind, ArtifactKind) and kind.scope == env.name
    live = LiveSkill(st, kind.scope, poll_s=0.0)
    sc = env.scenario
    client = ScriptedLLMClient(default=target)
    world = build_env(sc)
    workers = [LLMWorker(i, client, world, skill_source=live) for i in range(2)]
    with Swarm(world, workers, manager=RuleManager()) as swarm:
        swarm.run_episode(seed=1, ids=EventIds(1))  # no champion yet: no skill
        assert not any("# Skill" in r.messages[0].content for r in client.requests)

        life = Lifecycle(st, SKILL_KIND, kind.scope,
                         LifecycleConfig(gate=GateConfig(alpha=0.05, min_tasks=10)))
        v = life.register(kind.produce(ProduceContext(store=st, scope=kind.scope,
                                                      champion=None)))
        assert decode_skill(v) == RULE + "\n" and v.lineage.metrics["calls"] > 0
        assert v.lineage.inputs["val"] == list(env.tasks(Split.VAL))
        gated = run_gate(life, kind, v, tasks=12)
        assert gated.version.state is ArtifactState.PROMOTED, gated.decision.reason

        n = len(client.requests)
        swarm.run_episode(seed=2, ids=EventIds(1, 10_000))  # the same swarm, no restart
        later = client.requests[n:]
        assert later and all(f"# Skill\n{RULE}" in r.messages[0].content for r in later)
        assert live.version == v.version


def test_a_skill_payload_that_is_not_one_is_refused(tmp_path: Path) -> None:
    st = SqlStore(f"sqlite:///{tmp_path}/s.db")
    life = Lifecycle(st, SKILL_KIND, "x")
    good = life.register(Produced(payload=encode_skill("be brief")))
    assert decode_skill(good) == "be brief"
    bad = life.register(Produced(payload=b"\x00not json"))
    with pytest.raises(ArtifactError, match="not JSON"):
        decode_skill(bad)
    life.promote(bad)
    live = LiveSkill(st, "x", poll_s=0.0, default="fallback")
    assert live() == "fallback"  # logged, the workers keep deciding


def test_a_qa_skill_is_gated_on_the_test_split(tmp_path: Path) -> None:
    from swarmlearn.lifecycle import HeldOutTasks
    from swarmlearn.skills import QAConfig, QAEnv
    from swarmlearn.skills._fake import ScriptedWorld

    w = ScriptedWorld(categories=3, per_category=6)
    env = QAEnv.from_config(QAConfig(path=str(w.write(tmp_path / "qa.jsonl"))))
    kind = SkillKind(env, target=ScriptedLLMClient(default=w.target),
                     optimizer=ScriptedLLMClient(default=w.optimizer), run_root=tmp_path)
    st = SqlStore(f"sqlite:///{tmp_path}/s.db")
    v = Lifecycle(st, SKILL_KIND, kind.scope).register(Produced(payload=encode_skill(
        "Rule c0: x\nRule c1: x\nRule c2: x")))
    held = HeldOutTasks(scope=kind.scope, seeds=(900_000, 900_001))  # not QA items
    base, chal = kind.evaluate(None, held), kind.evaluate(v, held)
    assert [r.task for r in base] == list(env.tasks(Split.TEST)) == [r.task for r in chal]
    assert sum(r.solved for r in chal) == len(chal) > sum(r.solved for r in base) == 0


def test_the_daemon_builds_the_skill_kind_of_its_scenario(tmp_path: Path) -> None:
    from swarmlearn._daemon_config import LevelConfig, build_kind
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.lifecycle import HeldOutTasks
    from swarmlearn.skills._fake import serve

    server, url = serve(target)
    try:
        sc = load_scenario("code_exploration").override(workers={"count": 2})
        level = LevelConfig(name="skill", kind="swarmlearn.skills:skill_kind", group="skill",
                            trigger="count >= 20",
                            options={"url": url, "train": 3, "val": 5,
                                     "run_root": str(tmp_path), "epochs": 1})
        kind = build_kind(level, sc, SqlStore(f"sqlite:///{tmp_path}/s.db"), "adaptive")
        assert isinstance(kind, SkillKind) and kind.scope == sc.label
        assert kind.config.epochs == 1 and len(kind.env.tasks(Split.VAL)) == 5
        got = kind.evaluate(None, HeldOutTasks(scope=kind.scope, seeds=(900_000, 900_001)))
        assert [r.task for r in got] == [900_000, 900_001]  # played over HTTP
    finally:
        server.shutdown()
