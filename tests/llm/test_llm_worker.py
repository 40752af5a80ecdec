"""LLM worker, manager and planner logic against a scripted client (no server)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from swarmlearn.core.actions import Action, ActionResult, Candidate
from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import ActionEvent, Event, EventIds, LLMCallEvent
from swarmlearn.core.manager import Guidance, SwarmView
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.envs import make_env
from swarmlearn.errors import BackendUnavailable, BadResponse
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.llm.prompt import (
    REPLY_FORMAT,
    PromptInput,
    action_label,
    action_schema,
    build_messages,
    format_reply,
    parse_action,
)
from swarmlearn.llm.worker import INVALID, LLMManager, LLMWorker, Planner, static_order

CANDS = [Candidate(Action("CheckStatus", "api"), "unchecked"),
         Candidate(Action("Restart", "api"), "unchecked"),
         Candidate(Action("PingGateway"), "")]


def test_prompt_and_reply_format_round_trip() -> None:
    msgs = build_messages(PromptInput(state="Task: fix it", candidates=CANDS, guidance="go",
                                      skill="Check first.", plan=["CheckStatus", "Restart"]))
    assert msgs[0].role == "system" and "Check first." in msgs[0].content
    user = msgs[1].content
    assert "CheckStatus(api)" in user and "Manager: go" in user and "CheckStatus -> Restart" in user
    schema = action_schema(CANDS)
    assert schema["properties"]["action"]["enum"] == sorted(action_label(c.action) for c in CANDS)
    for c in CANDS:
        assert parse_action(format_reply(c.action), CANDS) == (c.action, "valid")


def _common_prefix(a: str, b: str) -> str:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def test_prompt_puts_what_stays_first_and_what_changes_last() -> None:
    # llama.cpp reuses a cached prompt up to the first token that differs
    state = "Task: fix it\nTargets:\n- api: unchecked\n- db: unchecked\nActions taken: 3"
    tick = PromptInput(state=state, candidates=CANDS, guidance="Focus on api.",
                       skill="Check first.", plan=["CheckStatus", "Restart"])
    done = ActionEvent(1, 1, "t", "", 0, 0, 0, "CheckStatus", "api", (),
                       ActionResult(True, "degraded"), 0.0, "unchecked", 0.0)
    other_worker = replace(tick, candidates=CANDS[1:], history=(done,))
    next_tick = replace(tick, state=state.replace("db: unchecked", "db: healthy"),
                        guidance="Focus on db.")
    system, user = build_messages(tick)
    assert REPLY_FORMAT in system.content and "Check first." in system.content
    assert REPLY_FORMAT not in user.content
    assert user.content.startswith("Usual order of work: CheckStatus -> Restart\n\nTask: fix it")
    # another worker in the same tick shares everything up to its own history and actions
    shared = _common_prefix(user.content, build_messages(other_worker)[1].content)
    assert shared.endswith("Manager: Focus on api.\n\n")
    # the next tick shares the system text, the plan and the state up to the changed line
    assert build_messages(next_tick)[0] == system
    shared = _common_prefix(user.content, build_messages(next_tick)[1].content)
    assert shared.endswith("- api: unchecked\n- db: ")


@pytest.mark.parametrize(
    ("reply", "how", "expected"),
    [
        ('{"action": "Restart(api)"', "repaired", Action("Restart", "api")),
        ('```json\n{"action": "checkstatus( API )"}\n```', "lenient", Action("CheckStatus", "api")),
        ('{"action": "PingGateway"}', "lenient", Action("PingGateway")),
    ],
)
def test_replies_are_repaired_or_matched_leniently(reply: str, how: str, expected: Action) -> None:
    action, got = parse_action(reply, CANDS)
    assert (action, got) == (expected, how)


@pytest.mark.parametrize("reply", ["", "I would restart the api", '{"action": "Teleport(moon)"}',
                                   '{"verb": "x"}'])
def test_unusable_replies_are_rejected(reply: str) -> None:
    with pytest.raises(BadResponse):
        parse_action(reply, CANDS)


def _pick_first(request: CompletionRequest) -> str:
    enum = request.json_schema["properties"]["action"]["enum"]  # type: ignore[index]
    return json.dumps({"action": enum[0]})


def test_worker_decides_records_calls_and_counts_replies() -> None:
    env = make_env("troubleshooting", {})
    obs = env.reset(0)
    client = ScriptedLLMClient(["garbage, not json", '{"action": "nope()"}'], default=_pick_first)
    planner = Planner(None)
    worker = LLMWorker(0, client, env, planner=planner)
    first = worker.decide(obs, Guidance())
    assert first.name == INVALID  # "garbage" is repaired into nothing usable: rejected
    assert worker.decide(obs, Guidance()).name == INVALID  # names no candidate
    good = worker.decide(obs, Guidance())
    assert good in {c.action for c in obs.candidates}
    stats = worker.episode_stats()
    assert stats["llm_rejected"] == 2 and stats["llm_valid"] == 1
    events = worker.drain_events(EventIds(5), "t", 0)
    assert len(events) == 3 and all(isinstance(e, LLMCallEvent) for e in events)
    assert {e.purpose for e in events} == {"decide"} and all(e.session == 5 for e in events)
    assert planner.source == "static" and worker.drain_events(EventIds(5), "t", 0) == []
    # guidance narrows what the model is offered
    _, cands = worker.request(obs, Guidance(assignments={0: obs.candidates[0].action.target}))
    assert all(not c.action.target or c.action.target == obs.candidates[0].action.target
               for c in cands)


def test_backend_failure_is_a_worker_error_and_recorded() -> None:
    env = make_env("troubleshooting", {})
    client = ScriptedLLMClient([BackendUnavailable("down")], default=_pick_first)
    worker = LLMWorker(0, client, env, planner=None)
    bus: EventBus[Event] = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.extend, inline=True)
    swarm = Swarm(env, [worker], bus=bus, config=SwarmConfig(max_ticks=2))
    ended = swarm.run_episode(seed=0, ids=EventIds(1))
    assert ended.stats["worker_errors"] == 1 and ended.stats["llm_calls"] == 2
    assert ended.stats["llm_failed"] == 1 and ended.actions == 1
    calls = [e for e in seen if isinstance(e, LLMCallEvent)]
    assert [c.ok for c in calls] == [False, True] and "down" in calls[0].error


def test_planner_prefers_learned_then_llm_then_static() -> None:
    env = make_env("troubleshooting", {})
    env.reset(0)
    learned = Planner(None, learned={"Restart": ["Diagnose"], "Diagnose": ["CheckStatus"]})
    assert learned.plan(env) == ["CheckStatus", "Diagnose", "Restart"]
    assert learned.source == "learned"
    good = '{"order": ["CheckStatus", "ReadLogs", "Diagnose", "Restart"]}'
    llm = Planner(ScriptedLLMClient([good]))
    assert llm.plan(env) == ["CheckStatus", "ReadLogs", "Diagnose", "Restart"]
    assert llm.source == "llm"
    careless = Planner(ScriptedLLMClient(['{"order": ["Restart", "CheckStatus"]}']))
    careless.plan(env)
    assert careless.source == "static"  # a plan that breaks the documented graph is refused
    broken = Planner(ScriptedLLMClient([BackendUnavailable("down")]))
    plan = broken.plan(env)
    assert broken.source == "static" and plan == [
        n for n in static_order(env.action_specs()) if n in plan]
    assert plan.index("CheckStatus") < plan.index("Diagnose") < plan.index("Restart")


def test_llm_manager_guides_and_falls_back() -> None:
    env = make_env("troubleshooting", {"services": 3})
    obs = env.reset(0)
    targets = list(obs.targets)
    view = SwarmView(0, obs, [0, 1], [], env.context_priority(), "t")
    client = ScriptedLLMClient([json.dumps({"focus": [targets[2]], "advice": "look there"}),
                                BackendUnavailable("down")])
    mgr = LLMManager(client, env)
    g = mgr.guide(view)
    assert g.focus == (targets[2],) and g.assignments == {0: targets[2], 1: targets[2]}
    assert "look there" in g.text
    fallback = mgr.guide(view)
    assert mgr.failures == 1 and set(fallback.focus) == set(targets)
    assert len(mgr.drain_events(EventIds(1), "t", 0)) == 2


def test_a_session_server_has_one_slot_the_workers_share() -> None:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.llm.backend import server_config

    scenario = load_scenario("troubleshooting").override(workers={"kind": "llm", "count": 5})
    config = server_config(scenario)
    assert config.parallel == 1 and config.threads is None and config.model is None
