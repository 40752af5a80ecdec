"""The skill optimizer against a scripted world: exact resume, outages, unparsable replies,
budgets, the rejected-edit memory, tokens, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmlearn.errors import BackendUnavailable, ConfigError
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.skills import (
    Edit,
    EditOp,
    EditStatus,
    FailureKind,
    QAConfig,
    QAEnv,
    RolloutOutage,
    Schedule,
    SkillOptConfig,
    SkillOptimizer,
    SkillRun,
    Source,
    Split,
    apply_edits,
    edit_budget,
    merge,
)
from swarmlearn.skills._checkpoint import read_state
from swarmlearn.skills._edits import skill_hash
from swarmlearn.skills._fake import POISON, ScriptedWorld
from swarmlearn.skills._select import select

CFG = SkillOptConfig(epochs=2, batch_size=4, minibatch_size=2, edit_budget=3,
                     gate_alpha=0.25, gate_min_tasks=5, concurrency=2, retry_pause_s=0.0)


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs."""


@pytest.fixture
def world(tmp_path: Path) -> tuple[ScriptedWorld, QAEnv]:
    w = ScriptedWorld(categories=6, per_category=6)
    return w, QAEnv.from_config(QAConfig(path=str(w.write(tmp_path / "qa.jsonl"))))


def _run(env: QAEnv, w: ScriptedWorld, run_dir: Path, cfg: SkillOptConfig = CFG,
         target: Any = None, optimizer: Any = None) -> SkillOptimizer:
    return SkillOptimizer(env, target=target or ScriptedLLMClient(default=w.target),
                          optimizer=optimizer or ScriptedLLMClient(default=w.optimizer),
                          run_dir=run_dir, config=cfg)


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: state[k] for k in ("best", "current", "history", "rejected", "step", "pool",
                                  "usage", "test", "status", "best_step")}


def test_uninterrupted_run_learns(world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    run = _run(env, w, tmp_path / "a").train()
    assert run.status == "done"
    assert run.test["best"]["exact"] > run.test["initial"]["exact"]
    assert "Rule" in run.best and POISON not in run.best


@pytest.mark.parametrize("kill_at", [3, 17, 40, 71])
def test_kill_mid_step_and_resume_gives_the_same_run(world: tuple[ScriptedWorld, QAEnv],
                                                     tmp_path: Path, kill_at: int) -> None:
    w, env = world
    whole = _run(env, w, tmp_path / "whole").train()
    calls = {"n": 0}

    def dying(request: CompletionRequest) -> str:
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        return w.target(request)

    with pytest.raises(Killed):
        _run(env, w, tmp_path / "cut", target=ScriptedLLMClient(default=dying)).train()
    resumed = _run(env, w, tmp_path / "cut").train()  # fresh clients, same directory
    assert _comparable(resumed.to_dict()) == _comparable(whole.to_dict())


def test_outage_is_an_error_never_a_zero_score(world: tuple[ScriptedWorld, QAEnv],
                                               tmp_path: Path) -> None:
    w, env = world
    whole = _run(env, w, tmp_path / "whole")
    whole.train()
    down = {"on": False, "n": 0}

    def flaky(request: CompletionRequest) -> str:
        down["n"] += 1
        if down["n"] > 40:
            raise BackendUnavailable("connection refused")
        return w.target(request)

    with pytest.raises(RolloutOutage):
        _run(env, w, tmp_path / "out", target=ScriptedLLMClient(default=flaky)).train()
    stopped = SkillRun.from_dict(read_state(tmp_path / "out"))
    assert stopped.status == "outage" and stopped.step >= 1
    assert stopped.failures[-1]["kind"] == FailureKind.OUTAGE
    assert len(stopped.history) == stopped.step  # the broken step left no record
    for h, cached in stopped.scores.items():  # no task scored while the server was down
        for task, traj in cached.items():
            assert whole.run.scores[h][task] == traj
    resumed = _run(env, w, tmp_path / "out").train()
    assert resumed.best == whole.run.best
    assert _steps(resumed.history) == _steps(whole.run.history)  # the calls spent differ


def _steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if k != "usage"} for h in history]


def test_unparsable_optimizer_reply_is_a_recorded_failure(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world

    def sloppy(request: CompletionRequest) -> str:
        if "Failed tasks" in request.messages[-1].content:
            return "I think the skill should be clearer about codes."
        return w.optimizer(request)

    def partial(request: CompletionRequest) -> str:  # a packed reply missing a minibatch
        text = w.optimizer(request)
        return text.replace('"F2"', '"F9"') if request.purpose == "reflect-packed" else text

    for packed in (True, False):
        run = _run(env, w, tmp_path / f"u{packed}", optimizer=ScriptedLLMClient(default=sloppy),
                   cfg=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                      gate_min_tasks=5, pack_reflections=packed)).train()
        fails = [f for h in run.history for f in h["failures"]]
        assert fails and {f["kind"] for f in fails} == {FailureKind.UNPARSABLE}
        assert "clearer about codes" in fails[0]["detail"]  # the reply is kept, not dropped
        assert run.best == run.initial  # nothing applied from an unusable reply
    run = _run(env, w, tmp_path / "p", optimizer=ScriptedLLMClient(default=partial),
               cfg=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                  gate_min_tasks=5)).train()
    missing = [f for h in run.history for f in h["failures"] if "minibatch F2" in f["detail"]]
    assert missing and missing[0]["kind"] == FailureKind.UNPARSABLE


def test_repaired_reply_is_used(world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world

    def trailing_comma(request: CompletionRequest) -> str:
        text = w.optimizer(request)
        return text[:-2] + ",]}" if text.endswith("]}") and "edits" in text else text

    run = _run(env, w, tmp_path / "r", optimizer=ScriptedLLMClient(default=trailing_comma),
               cfg=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                  gate_alpha=0.25, gate_min_tasks=5)).train()
    assert "Rule" in run.best
    assert not [f for h in run.history for f in h["failures"] if f["kind"] == "unparsable"]


def test_budget_stops_cleanly_and_resumes(world: tuple[ScriptedWorld, QAEnv],
                                          tmp_path: Path) -> None:
    w, env = world
    whole = _run(env, w, tmp_path / "whole").train()
    small = SkillOptConfig(**{**_fields(CFG), "max_calls": 60})
    run = _run(env, w, tmp_path / "b", cfg=small).train()
    assert run.status == "budget" and run.failures[-1]["kind"] == FailureKind.BUDGET
    assert run.usage.calls <= 60 + CFG.batch_size  # stops before the next call
    done = _run(env, w, tmp_path / "b", cfg=CFG).train()
    assert done.status == "done" and done.best == whole.best


def _fields(cfg: SkillOptConfig) -> dict[str, Any]:
    from swarmlearn._config import to_mapping

    out: dict[str, Any] = to_mapping(cfg)
    out["schedule"] = Schedule(out["schedule"])
    return out


def test_resume_refuses_a_different_config(world: tuple[ScriptedWorld, QAEnv],
                                           tmp_path: Path) -> None:
    w, env = world
    _run(env, w, tmp_path / "c", cfg=SkillOptConfig(**{**_fields(CFG), "max_calls": 10})).train()
    with pytest.raises(ConfigError, match="seed"):
        _run(env, w, tmp_path / "c", cfg=SkillOptConfig(**{**_fields(CFG), "seed": 3}))


def _no_floor(env: QAEnv) -> QAEnv:
    """``env`` without a known lowest cost: the gate cannot tell that a task is unwinnable
    and the run never stops early."""
    env.min_cost = None
    return env


def test_rejected_edit_is_remembered_and_not_tried_again(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    env = _no_floor(env)  # with the floor the run converges before the poison is tried alone
    opt = ScriptedLLMClient(default=w.optimizer)
    run = _run(env, w, tmp_path / "m", optimizer=opt).train()
    assert [r["content"] for r in run.rejected].count(POISON) == 1
    again = [f for h in run.history for f in h["failures"]
             if f["kind"] == FailureKind.REPEATED_REJECTED]
    assert again  # the scripted optimizer ignores the memory; we filter it out
    later = [r for r in opt.requests if "rejected by validation" in r.messages[-1].content]
    assert later and POISON in later[-1].messages[-1].content
    tried = [(h["step"], len(h["apply"])) for h in run.history for a in h["apply"]
             if a["edit"]["content"] == POISON]
    # once in a bundle (both edits suspects), once alone (rejected), never again
    assert [n for _, n in tried] == [2, 1]
    bundled = next(h for h in run.history if h["step"] == tried[0][0])
    partner = next(a["edit"]["content"] for a in bundled["apply"]
                   if a["edit"]["content"] != POISON)
    assert bundled["action"] == "reject" and partner in run.best  # not lost with the poison
    assert [r["content"] for r in run.rejected] == [POISON]


def test_a_suspect_is_tried_alone_without_being_proposed_again(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    run = _run(env, w, tmp_path / "s").train()
    bundle = next(h for h in run.history if h.get("action") == "reject"
                  and any(a["edit"]["content"] == POISON for a in h["apply"]))
    partner = next(a["edit"] for a in bundle["apply"] if a["edit"]["content"] != POISON)
    retry = next(h for h in run.history if h.get("retried"))
    # the optimizer did not propose it in that step: the memory brought it back, alone
    assert retry["step"] > bundle["step"] and retry["merged"] <= retry["deferred"]
    assert [a["edit"]["content"] for a in retry["apply"]] == [partner["content"]]
    assert retry["action"] == "accept" and partner["content"] in run.best
    assert POISON not in run.best


def test_a_run_stops_spending_once_its_champion_cannot_be_beaten(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    run = _run(env, w, tmp_path / "c").train()
    free = _run(_no_floor(QAEnv.from_config(env.config)), w, tmp_path / "f").train()
    assert run.best == free.best and run.test == free.test  # the same final skill
    assert run.usage.calls < free.usage.calls
    done = [h for h in run.history if h["action"] == "converged"]
    assert done and done[-1]["step"] == run.total_steps == len(run.history)
    first = run.history.index(done[0])
    champion = run.scores[skill_hash(run.best)]
    assert all(champion[str(t)]["solved"] for t in env.tasks(Split.VAL))
    # after the first converged step (which may complete the champion's validation),
    # no step spends a call
    assert len({h["usage"]["calls"] for h in run.history[first:]}) == 1
    assert run.usage.calls == run.history[-1]["usage"]["calls"] + 2 * len(env.tasks(Split.TEST))


def test_a_champion_solving_everything_spends_only_its_validation_and_the_test(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    every = "\n".join(f"Rule {c}: give the code of the item." for c in w.cats)
    run = SkillOptimizer(env, target=ScriptedLLMClient(default=w.target),
                         optimizer=ScriptedLLMClient(default=w.optimizer),
                         run_dir=tmp_path / "e", config=CFG, initial_skill=every).train()
    assert {h["action"] for h in run.history} == {"converged"}
    # best is the initial skill: its test trajectories serve both sides of the final test
    assert run.usage.calls == len(env.tasks(Split.VAL)) + len(env.tasks(Split.TEST))
    assert run.test["best"]["exact"] == 1.0


def test_tokens_are_counted_per_stage(world: tuple[ScriptedWorld, QAEnv],
                                      tmp_path: Path) -> None:
    w, env = world
    target, opt = ScriptedLLMClient(default=w.target), ScriptedLLMClient(default=w.optimizer)
    run = _run(env, w, tmp_path / "t", target=target, optimizer=opt).train()
    u = run.usage
    assert u.calls == len(target.requests) + len(opt.requests)
    assert set(u.stages) >= {"rollout", "validate", "reflect", "test"}
    assert all(s.prompt_tokens > 0 for s in u.stages.values())


def test_pool_option_runs(world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    run = _run(env, w, tmp_path / "p", cfg=SkillOptConfig(**{**_fields(CFG), "pool": True}))
    assert run.train().status == "done"


def test_bad_jsonl_line_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"question": "q", "answers": ["a"]}\n{"question": "q2"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: missing field 'answers'"):
        QAEnv.from_config(QAConfig(path=str(p)))
    p.write_text('{"question": "q", "answers": ["a"]}\nnot json\n')
    with pytest.raises(ConfigError, match=r":2: not JSON"):
        QAEnv.from_config(QAConfig(path=str(p)))


def test_apply_reports_each_edit() -> None:
    doc = "# Skill\nline one\nline two\n"
    edits = [Edit(op=EditOp.INSERT_AFTER, anchor="line one", content="inserted"),
             Edit(op=EditOp.REPLACE, anchor="line two", content="line 2"),
             Edit(op=EditOp.DELETE, anchor="nowhere"),
             Edit(op=EditOp.APPEND, content="the end")]
    new, report = apply_edits(doc, edits)
    assert new == "# Skill\nline one\ninserted\nline 2\nthe end\n"
    assert [o.status for o in report] == [EditStatus.APPLIED, EditStatus.APPLIED,
                                         EditStatus.MISSING_ANCHOR, EditStatus.APPLIED]


def test_merge_sums_support_and_failure_wins_conflicts() -> None:
    a = Edit(op=EditOp.REPLACE, anchor="x", content="y", support=1, source=Source.SUCCESS)
    b = Edit(op=EditOp.REPLACE, anchor="x", content="z", support=1, source=Source.FAILURE)
    c = Edit(op=EditOp.APPEND, content="Rule", support=2)
    merged = merge([[a, c], [b], [c.with_support(3)]], fan_in=2)
    assert b in merged and a not in merged
    assert [e.support for e in merged if e.op is EditOp.APPEND] == [5]


def test_edit_budget_schedules() -> None:
    assert [edit_budget(Schedule.CONSTANT, s, 5, high=4, low=1) for s in range(1, 6)] == [4] * 5
    lin = [edit_budget(Schedule.LINEAR, s, 5, high=4, low=1) for s in range(1, 6)]
    cos = [edit_budget(Schedule.COSINE, s, 5, high=4, low=1) for s in range(1, 6)]
    assert lin[0] == cos[0] == 4 and lin[-1] == cos[-1] == 1
    assert lin == sorted(lin, reverse=True) and cos == sorted(cos, reverse=True)


def test_the_concurrency_changes_no_decision(world: tuple[ScriptedWorld, QAEnv],
                                             tmp_path: Path) -> None:
    w, env = world
    one = _run(env, w, tmp_path / "one", cfg=SkillOptConfig(**{**_fields(CFG),
                                                              "concurrency": 1})).train()
    four = _run(env, w, tmp_path / "four", cfg=SkillOptConfig(**{**_fields(CFG),
                                                                "concurrency": 4})).train()
    assert _steps(one.history) == _steps(four.history) and one.best == four.best
    assert any(h.get("val_tasks", 11) < 11 for h in one.history)  # some gate was curtailed


def test_resume_refuses_other_tasks(world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    _run(env, w, tmp_path / "c", cfg=SkillOptConfig(**{**_fields(CFG), "max_calls": 10})).train()
    other = QAEnv.from_config(QAConfig(path=str(ScriptedWorld(5, 6).write(tmp_path / "o.jsonl"))))
    with pytest.raises(ConfigError, match="tasks of o are not the run's"):
        _run(other, w, tmp_path / "c")


def test_an_edit_copying_the_format_placeholder_is_invalid() -> None:
    from swarmlearn.skills._reflect import parse_edits

    reply = ('{"edits": [{"op": "append", "content": "new text (not for delete)"}, '
             '{"op": "append", "content": "Answer in one word."}]}')
    edits, failures = parse_edits(reply, Source.FAILURE, 2, 4, "reflect[F1]")
    assert [e.content for e in edits] == ["Answer in one word."]
    assert [f.kind for f in failures] == [FailureKind.INVALID_EDIT]
    assert "placeholder" in failures[0].detail


def test_a_ranking_reply_that_is_not_json_is_recorded_and_the_fallback_used() -> None:
    edits = [Edit(op=EditOp.APPEND, content=f"rule {i}", support=i + 1,
                  source=Source.SUCCESS if i % 2 else Source.FAILURE) for i in range(4)]
    chat = ScriptedLLMClient(default=lambda r: "the second one, then the first")
    got = select(chat, "", edits, budget=2)
    assert got.ranked_by == "fallback" and len(chat.requests) == 1
    assert [f.kind for f in got.failures] == [FailureKind.UNPARSABLE]
    assert "the second one" in got.failures[0].detail  # the reply is kept in the record
    assert got.edits == (edits[2], edits[0])  # failure-driven first, then by support


def test_an_unparsable_reply_mid_run_loses_nothing_already_stored(
        world: tuple[ScriptedWorld, QAEnv], tmp_path: Path) -> None:
    w, env = world
    clean = _run(env, w, tmp_path / "clean").train()
    seen = {"reflect": 0}

    def breaks_at_third_reflection(request: CompletionRequest) -> str:
        if request.purpose.startswith("reflect"):
            seen["reflect"] += 1
            if seen["reflect"] == 3:
                return "<html>502 Bad Gateway</html>"
        return w.optimizer(request)

    cut = _run(env, w, tmp_path / "cut",
               optimizer=ScriptedLLMClient(default=breaks_at_third_reflection))
    steps: list[dict[str, Any]] = []
    cut._on_step = lambda r: steps.append(read_state(tmp_path / "cut"))
    run = cut.train()
    bad = next(h for h in run.history if h["failures"]
               and h["failures"][0]["kind"] == FailureKind.UNPARSABLE)
    assert bad["proposed"] == 0 and "502 Bad Gateway" in bad["failures"][0]["detail"]
    before = bad["step"] - 1
    assert before >= 2 and run.history[:before] == clean.history[:before]
    # every checkpoint after the bad step still holds what the steps before it stored
    for state in steps[before:]:
        assert state["history"][:before] == steps[before - 1]["history"]
        assert all(v in state["versions"] for v in steps[before - 1]["versions"])
        for h, tasks in steps[before - 1]["scores"].items():
            assert tasks.items() <= state["scores"][h].items()
    assert run.status == "done"
