"""LLM workers, the LLM manager, and dependency planning.

An :class:`LLMWorker` reads the environment's text rendering, the candidate
actions (narrowed by the manager's guidance), the guidance text, the skill
document and a plan of the usual order of work, and answers with one
schema-constrained JSON action (see :mod:`swarmlearn.llm.prompt`). Its calls
become :class:`LLMCallEvent`\\ s: the swarm drains them after each tick.

The plan is made once per task, from the first source that has one: the
learned dependency graph (offline model) → the LLM → the environment's
static graph (``ActionSpec.after``).

The skill is ``LLMWorkerConfig.skill``, or, with ``skill_source``, what that
callable returns at the start of each episode (the lifecycle's champion skill:
:class:`swarmlearn.skills.LiveSkill`), so a promoted skill reaches running
workers at their next episode, with no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionSpec, Candidate
from swarmlearn.core.environment import Environment, Observation
from swarmlearn.core.events import ActionEvent, Event, EventIds, NoteEvent
from swarmlearn.core.manager import Guidance, RuleManager, SwarmView
from swarmlearn.core.workers import narrow
from swarmlearn.errors import BackendError, BadResponse
from swarmlearn.llm._batch import LLMClient
from swarmlearn.llm._json import JsonReplyParser
from swarmlearn.llm._types import CallRecord, Completion, CompletionRequest
from swarmlearn.llm.prompt import (
    PromptInput,
    action_schema,
    build_messages,
    guidance_schema,
    parse_action,
    plan_schema,
)
from swarmlearn.types import Outcome

__all__ = [
    "INVALID",
    "LLMManager",
    "LLMWorker",
    "LLMWorkerConfig",
    "Planner",
    "static_order",
    "topological_order",
]

logger = logging.getLogger(__name__)

INVALID = "(invalid reply)"  # the action name sent when a reply names no candidate


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMWorkerConfig:
    temperature: float = 0.3
    max_tokens: int = 48
    history: int = 4
    skill: str = ""

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, lo=0.0, hi=2.0)
        check_range("max_tokens", self.max_tokens, lo=8)
        check_range("history", self.history, lo=0, hi=32)


class _CallLog:
    """Call records waiting to become events (filled by decide threads, drained by the swarm)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[CallRecord] = []

    def call(self, client: LLMClient, request: CompletionRequest, model: str) -> Completion:
        start, ts = time.perf_counter(), time.time()
        try:
            completion = client.complete(request)
        except BackendError as exc:
            self._add(CallRecord.of(request, completion=None, error=exc, model=model, ts=ts,
                                    latency=time.perf_counter() - start, attempts=1))
            raise
        self._add(CallRecord.of(request, completion=completion, error=None, model=model, ts=ts,
                                latency=completion.latency, attempts=completion.attempts))
        return completion

    def _add(self, record: CallRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def drain(self, ids: EventIds, task: str, worker: int, tick: int) -> list[Event]:
        with self._lock:
            records, self._pending = self._pending, []
        return [r.to_event(id=ids.next(), session=ids.session, task=task, worker=worker,
                           tick=tick) for r in records]


def topological_order(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` ordered so that every prerequisite comes first (stable; cycles broken)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(n: str, stack: frozenset[str]) -> None:
        if n in seen or n in stack:
            return
        for d in deps.get(n, ()):
            if d in names:
                visit(d, stack | {n})
        seen.add(n)
        order.append(n)

    for n in names:
        visit(n, frozenset())
    return order


def static_order(specs: Sequence[ActionSpec]) -> list[str]:
    """The order the environment documents (``ActionSpec.after``)."""
    names = [s.name for s in specs]
    return topological_order(names, {s.name: s.after for s in specs})


class Planner:
    """Plans the usual order of work once per task: learned graph → LLM → static graph.

    One planner serves all workers of a swarm: the first worker to ask in a
    task makes the plan (under a lock), the others reuse it; :meth:`reset`
    (called at each episode end) forgets it. A plan that the environment alone
    does not give (one the LLM or a learned graph made) is recorded as a
    ``plan`` note (its order and source), so the prompts of a recorded episode
    can be rebuilt (the LoRA trainer's data, :mod:`swarmlearn.training`).
    """

    def __init__(self, client: LLMClient | None, *, model: str = "",
                 learned: Mapping[str, Sequence[str]] | None = None) -> None:
        self.client = client
        self.calls = _CallLog()
        self.model = model
        self.learned = dict(learned or {})
        self.source = ""
        self._lock = threading.Lock()
        self._plan: list[str] | None = None
        self._made: tuple[list[str], str] | None = None  # the plan to note at the next drain

    def get(self, env: Environment) -> list[str]:
        with self._lock:
            if self._plan is None:
                self._plan = self.plan(env)
                if self.source != "static":  # the static plan is rebuilt from the env
                    self._made = (list(self._plan), self.source)
            return self._plan

    def reset(self) -> None:
        with self._lock:
            self._plan = None

    def drain_events(self, ids: EventIds, task: str, tick: int) -> list[Event]:
        events = self.calls.drain(ids, task, -1, tick)
        with self._lock:
            made, self._made = self._made, None
        if made is not None:
            order, source = made
            events.append(NoteEvent(ids.session, task, -1, tick, "plan", source,
                                    {"order": ",".join(order), "source": source}, time.time()))
        return events

    def plan(self, env: Environment) -> list[str]:
        specs = env.action_specs()
        names = [s.name for s in specs]
        useful = [s.name for s in specs if s.after] + [
            s.name for s in specs if not s.after and any(s.name in t.after for t in specs)]
        if self.learned:
            self.source = "learned"
            known = [n for n in names if n in self.learned or any(
                n in deps for deps in self.learned.values())]
            return topological_order(known, self.learned)
        if self.client is not None:
            try:
                return self._ask(env, specs)
            except BackendError as exc:
                logger.info("LLM plan not used (%s); using the static graph", exc)
        self.source = "static"
        return [n for n in static_order(specs) if n in useful]

    def _ask(self, env: Environment, specs: Sequence[ActionSpec]) -> list[str]:
        assert self.client is not None
        names = [s.name for s in specs]
        prompt = (f"Task: {env.task_text()}\nActions: {', '.join(names)}\n"
                  "Which actions are needed, in the order they are usually done? "
                  'Answer with JSON: {"order": [...]}')
        request = CompletionRequest.chat(prompt, json_schema=plan_schema(names), max_tokens=96,
                                         temperature=0.0, purpose="plan")
        reply = JsonReplyParser(plan_schema(names)).parse(
            self.calls.call(self.client, request, self.model).text)
        order = [n for n in dict.fromkeys(reply.value["order"]) if n in names]
        if not order:
            raise BadResponse("empty plan")
        after = {s.name: s.after for s in specs}
        for i, n in enumerate(order):  # a plan must respect the documented dependencies
            if after.get(n) and not any(a in order[:i] for a in after[n]):
                raise BadResponse(f"plan puts {n} before its prerequisites {list(after[n])}")
        self.source = "llm"
        return order


class LLMWorker:
    """A worker that asks a language model for each action (see module docstring)."""

    blocking = True

    def __init__(
        self,
        worker_id: int,
        client: LLMClient,
        env: Environment,
        *,
        config: LLMWorkerConfig | None = None,
        planner: Planner | None = None,
        model: str = "",
        seed: int = 0,
        skill_source: Callable[[], str] | None = None,
    ) -> None:
        self.id = worker_id
        self.client = client
        self.env = env
        self.config = config or LLMWorkerConfig()
        self.planner = planner
        self.model = model
        self.seed = seed
        self.parser = JsonReplyParser()
        self.calls = _CallLog()
        self._history: deque[ActionEvent] = deque(maxlen=max(1, self.config.history))
        self._counts = {"llm_valid": 0, "llm_repaired": 0, "llm_lenient": 0, "llm_rejected": 0}
        self._step = 0
        self._skill_source = skill_source
        self._skill: str | None = None  # this episode's skill, read at its first decision

    @property
    def skill(self) -> str:
        if self._skill is None:
            self._skill = (self._skill_source() if self._skill_source is not None
                           else self.config.skill)
        return self._skill

    def request(self, observation: Observation, guidance: Guidance) -> tuple[
            CompletionRequest, Sequence[Candidate]]:
        """The request this worker would send now (and the candidates it offers)."""
        plan = self.planner.get(self.env) if self.planner is not None else []
        # offered in the planned order of work: a small model leans on the first lines
        rank = {name: i for i, name in enumerate(plan)}
        cands = sorted(self._fresh(narrow(observation.candidates, guidance, self.id)),
                       key=lambda c: rank.get(c.action.name, len(rank)))
        prompt = PromptInput(
            state=self.env.render_text(), candidates=cands, guidance=guidance.text,
            skill=self.skill, plan=plan,
            history=list(self._history)[-self.config.history:] if self.config.history else (),
        )
        request = CompletionRequest(
            messages=build_messages(prompt), json_schema=action_schema(cands),
            max_tokens=self.config.max_tokens, temperature=self.config.temperature,
            seed=self.seed * 100_003 + self.id * 1_009 + self._step, purpose="decide",
            cache_prompt=True,  # reuse the slot's prefix (the prompt's stable parts come first)
        )
        return request, cands

    def _fresh(self, cands: Sequence[Candidate]) -> Sequence[Candidate]:
        """Leave out what this worker just did to no effect in the very same context."""
        stale = {(e.action, e.target, e.context) for e in self._history if not e.result.success}
        if not stale:
            return cands
        keep = [c for c in cands if (c.action.name, c.action.target, c.context) not in stale]
        return keep or cands

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        request, cands = self.request(observation, guidance)
        self._step += 1
        completion = self.calls.call(self.client, request, self.model)
        try:
            action, how = parse_action(completion.text, cands, self.parser)
        except BadResponse as exc:
            self._counts["llm_rejected"] += 1
            logger.info("worker %s: rejected reply: %s", self.id, exc)
            return Action(INVALID, "", (("reply", completion.text[:200]),))
        self._counts[f"llm_{how}"] += 1
        return action

    def observe(self, event: ActionEvent) -> None:
        self._history.append(event)

    def end_episode(self, outcome: Outcome) -> None:
        self._history.clear()
        self._skill = None
        if self.planner is not None:
            self.planner.reset()

    def drain_events(self, ids: EventIds, task: str, tick: int) -> list[Event]:
        events = self.calls.drain(ids, task, self.id, tick)
        if self.planner is not None and self.id == 0:  # the shared planner's calls, once
            events += self.planner.drain_events(ids, task, tick)
        return events

    def episode_stats(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self._counts.items()}
        for k in self._counts:
            self._counts[k] = 0
        return out


class LLMManager:
    """Guidance from a language model; the rule manager's guidance if the model fails."""

    def __init__(self, client: LLMClient, env: Environment, *, model: str = "") -> None:
        self.client = client
        self.env = env
        self.model = model
        self.calls = _CallLog()
        self.fallback = RuleManager()
        self.parser = JsonReplyParser()
        self.failures = 0

    def guide(self, view: SwarmView) -> Guidance:
        base = self.fallback.guide(view)
        targets = list(base.focus) or list(view.observation.targets)
        prompt = (f"{self.env.render_text()}\n\nYou manage {len(view.workers)} workers. Which "
                  "targets should they work on next (most promising first), and what is your "
                  'advice? Answer with JSON: {"focus": [...], "advice": "..."}')
        schema = guidance_schema(targets)
        request = CompletionRequest.chat(prompt, json_schema=schema, max_tokens=96,
                                         temperature=0.0, purpose="guide")
        try:
            reply = self.parser.parse(self.calls.call(self.client, request, self.model).text)
            focus = [t for t in dict.fromkeys(reply.value.get("focus", [])) if t in targets]
            advice = str(reply.value.get("advice", ""))[:160]
        except BackendError as exc:
            self.failures += 1
            logger.info("LLM manager fell back to rules: %s", exc)
            return base
        focus = focus or list(base.focus)
        if not focus:
            return base
        assignments = {w: focus[i % len(focus)] for i, w in enumerate(view.workers)}
        text = f"Focus on {', '.join(focus)}. {advice}".strip()
        return Guidance(tick=view.tick, text=text, focus=tuple(focus), avoid=base.avoid,
                        assignments=assignments)

    def drain_events(self, ids: EventIds, task: str, tick: int) -> list[Event]:
        return self.calls.drain(ids, task, -1, tick)

