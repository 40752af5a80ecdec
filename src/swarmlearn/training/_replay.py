"""Recorded episodes replayed as the decisions an LLM worker would have been asked.

An :class:`~swarmlearn.core.events.ActionEvent` holds the action, its target,
the target's visible context and what the action did — not the prompt. The
prompt is rebuilt instead: environments are deterministic for a task seed, so
the episode is run again in a real :class:`~swarmlearn.core.swarm.Swarm` with
the scenario's manager, where each worker is a :class:`_ReplayWorker` that
takes the recorded action and, before it does, asks a real
:class:`~swarmlearn.llm.worker.LLMWorker` (fed the same events, so with the
same history) for the request it would send now. That request — the state,
the candidates after guidance, the plan order, the history, the skill — is
built by :mod:`swarmlearn.llm.prompt`, the code that builds served prompts,
so a model is trained on exactly what it will be asked.

Every replayed result is compared with the recorded one; an episode whose
replay differs (an environment changed since it was recorded) is reported as
diverged and gives no examples.

The plan a served LLM worker shows is made by its
:class:`~swarmlearn.llm.worker.Planner`: the learned dependency graph, else
the LLM, else the static graph. The replay uses the plan recorded in the
episode (LLM workers record it as a ``plan`` note), else what the planner
makes without an LLM; with no learned graph it also captures the plan request
the worker would send, answered with that plan, so the adapter learns to
give the plan it is trained to read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from swarmlearn.core.actions import Action
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds
from swarmlearn.core.manager import Guidance, Manager, NullManager, RuleManager
from swarmlearn.core.scenario import ManagerKind, Scenario
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.errors import SwarmlearnError
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.llm._types import Message
from swarmlearn.llm.prompt import action_label, format_reply
from swarmlearn.llm.worker import LLMWorker, LLMWorkerConfig, Planner
from swarmlearn.session import build_env
from swarmlearn.types import Outcome

__all__ = ["Decision", "ReplayedEpisode", "replay_episode", "replay_manager"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision as an LLM worker would have been asked it, and the recorded answer."""

    messages: tuple[Message, ...]
    reply: str  # format_reply of the recorded action (or the plan JSON)
    purpose: str  # "decide" or "plan"
    tick: int
    worker: int
    offered: bool  # the recorded action was among the candidates the LLM worker offers
    progress: bool  # the action made progress (ActionResult.success)
    label: str  # the action as the model writes it ("" for a plan)


@dataclass(slots=True)
class ReplayedEpisode:
    ended: EpisodeEnded
    decisions: list[Decision] = field(default_factory=list)
    plan: tuple[str, ...] = ()
    plan_source: str = ""
    diverged: str = ""  # why the replay differs from the record ("" if it does not)


class _NoRecordedAction(SwarmlearnError):
    """The worker took no action at this tick in the record (it failed to decide)."""


class _ReplayWorker:
    """Takes the recorded actions; asks an LLMWorker for the request it would send."""

    blocking = False

    def __init__(self, inner: LLMWorker, recorded: Mapping[int, ActionEvent], last_tick: int,
                 out: ReplayedEpisode) -> None:
        self.id = inner.id
        self.inner = inner
        self.recorded = recorded
        self.last_tick = last_tick
        self.out = out
        self._tick = 0
        self._pending: tuple[tuple[Message, ...], str, bool, int] | None = None

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        tick = self._tick
        self._tick += 1
        event = self.recorded.get(tick)
        if event is None:
            if tick >= self.last_tick:  # the task ended before this worker's turn
                return Action("(replay: none)")
            raise _NoRecordedAction(f"no recorded action at tick {tick}")
        request, cands = self.inner.request(observation, guidance)
        action = Action(event.action, event.target, event.args)
        label = action_label(action)
        offered = any(c.action == action for c in cands)
        self._pending = (request.messages, label, offered, tick)
        return action

    def observe(self, event: ActionEvent) -> None:
        self.inner.observe(event)
        if self._pending is None:
            return
        messages, label, offered, tick = self._pending
        self._pending = None
        recorded = self.recorded.get(tick)
        if recorded is not None and not self.out.diverged:
            mine, theirs = event.result, recorded.result
            if (mine.success, mine.output, mine.error) != (theirs.success, theirs.output,
                                                           theirs.error):
                self.out.diverged = (f"tick {tick}, worker {self.id}: {label} gave "
                                     f"{(mine.output or mine.error)[:60]!r}, recorded "
                                     f"{(theirs.output or theirs.error)[:60]!r}")
        action = Action(event.action, event.target, event.args)
        self.out.decisions.append(Decision(
            messages=messages, reply=format_reply(action), purpose="decide", tick=tick,
            worker=self.id, offered=offered, progress=event.result.success, label=label))

    def end_episode(self, outcome: Outcome) -> None:
        self.inner.end_episode(outcome)


def replay_manager(scenario: Scenario) -> Manager | None:
    """The scenario's manager for a replay (None: an LLM manager, whose guidance is not
    recorded, so its episodes cannot be replayed)."""
    kind = scenario.manager.kind
    if kind is ManagerKind.RULE:
        return RuleManager()
    if kind is ManagerKind.NONE:
        return NullManager()
    return None


class _PlanCapture:
    """A planner client that answers the plan the replay shows, and keeps the request."""

    def __init__(self, order: Sequence[str]) -> None:
        self.client = ScriptedLLMClient(default=json.dumps({"order": list(order)}))

    @property
    def request(self) -> CompletionRequest | None:
        return self.client.requests[0] if self.client.requests else None


def _plan(scenario: Scenario, seed: int, learned: Mapping[str, Sequence[str]],
          recorded: Sequence[str]) -> tuple[list[str], str, Planner, _PlanCapture | None]:
    """The plan of one task, its source, and the planner the replayed workers share."""
    env = build_env(scenario)
    env.reset(seed)
    if recorded:
        order, source = list(recorded), "recorded"
    else:
        offline = Planner(None, learned=learned)
        order, source = offline.plan(env), offline.source
    if learned or not order:
        fixed = Planner(None, learned=learned)
        return order, source, fixed, None
    capture = _PlanCapture(order)
    return order, source, Planner(capture.client), capture


def replay_episode(scenario: Scenario, ended: EpisodeEnded, events: Sequence[ActionEvent], *,
                   worker_config: LLMWorkerConfig | None = None,
                   learned: Mapping[str, Sequence[str]] | None = None,
                   recorded_plan: Sequence[str] = ()) -> ReplayedEpisode:
    """Replay one recorded episode (``events``: its action events in id order)."""
    out = ReplayedEpisode(ended)
    manager = replay_manager(scenario)
    if manager is None:
        out.diverged = "an LLM manager's guidance is not recorded"
        return out
    order, source, planner, capture = _plan(scenario, ended.seed, learned or {}, recorded_plan)
    out.plan, out.plan_source = tuple(order), source
    by_worker: dict[int, dict[int, ActionEvent]] = {}
    for e in events:
        by_worker.setdefault(e.worker, {})[e.tick] = e
    count = max(scenario.workers.count, max(by_worker, default=-1) + 1)
    env = build_env(scenario)
    last_tick = max((e.tick for e in events), default=0)
    cfg = worker_config or LLMWorkerConfig()
    workers = [_ReplayWorker(LLMWorker(i, ScriptedLLMClient(), env, config=cfg, planner=planner),
                             by_worker.get(i, {}), last_tick, out) for i in range(count)]
    swarm_cfg = SwarmConfig(max_ticks=max(1, ended.ticks), timeout_s=1e9,
                            schedule=scenario.manager.schedule,
                            interval=scenario.manager.interval)
    with Swarm(env, workers, manager=manager, config=swarm_cfg) as swarm:
        replayed = swarm.run_episode(seed=ended.seed, ids=EventIds(0), task=ended.task)
    if not out.diverged and replayed.actions != ended.actions:
        out.diverged = f"{replayed.actions} actions replayed, {ended.actions} recorded"
    if not out.diverged and replayed.outcome.kind is not ended.outcome.kind:
        out.diverged = f"replay ended {replayed.outcome.kind}, recorded {ended.outcome.kind}"
    if capture is not None and capture.request is not None:
        out.decisions.insert(0, Decision(
            messages=capture.request.messages, reply=json.dumps({"order": order}),
            purpose="plan", tick=0, worker=-1, offered=True, progress=True, label=""))
    return out
