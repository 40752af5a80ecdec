"""The swarm scenarios as a skill environment: the skill is the LLM workers' skill.

A task is a task seed of a scenario. :meth:`SwarmSkillEnv.run` plays one real
episode: the scenario's environment, its LLM workers (what a session builds:
:class:`~swarmlearn.llm.LLMWorker` with a shared :class:`~swarmlearn.llm.worker.Planner`)
reading ``skill`` as their ``PromptInput.skill``, the scenario's manager, the
swarm's tick loop. The result: ``solved`` is the episode's success, ``cost``
the actions spent (the gate pairs by seed: a win is solving a task the other
side did not, or solving it in fewer actions — success rate and actions per
solved task, as ``eval --learning`` reports), ``score`` the success (0/1), and
``text`` what the optimizer reads: the task, the outcome and the actions taken
with their results.

The swarm counts a worker that could not decide as a worker error and goes on;
here any failed target call makes the episode raise
:class:`~swarmlearn.errors.BackendError`: an outage is never a failed task.

Splits: ``train``, ``val`` and ``test`` are disjoint blocks of seeds from
``first_seed``; any other seed can be run too (``open_tasks``), which the
lifecycle's gate uses (fresh held-out seeds).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn._config import check_range, from_mapping
from swarmlearn.core.bus import EventBus
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.core.events import ActionEvent, EpisodeEnded, Event, EventIds
from swarmlearn.core.manager import Manager, NullManager, RuleManager
from swarmlearn.core.scenario import ManagerKind, Scenario, load_scenario
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.errors import BackendError, ConfigError
from swarmlearn.llm import Completion, CompletionRequest, LLMClient, run_batch
from swarmlearn.llm.worker import LLMManager, LLMWorker, LLMWorkerConfig, Planner
from swarmlearn.skills._env import Split, Trajectory
from swarmlearn.types import OutcomeKind

__all__ = ["SwarmSkillEnv", "SwarmTasksConfig"]

_SESSION = 7_000  # event ids of these episodes (they are not recorded in a store)


@dataclass(frozen=True, kw_only=True, slots=True)
class SwarmTasksConfig:
    """Which scenario, which seeds, and how the LLM workers decide.

    ``workers`` / ``max_ticks`` override the scenario's when > 0. ``temperature``
    0 makes a scripted or seeded target deterministic (exact resume);
    ``llm_plan`` lets the planner ask the LLM for the order of work (a session
    does), else the environment's static order is used (one call fewer per task).
    """

    scenario: str
    variant: str = ""
    first_seed: int = 50_000
    train: int = 8
    val: int = 8
    test: int = 8
    workers: int = 0
    max_ticks: int = 0
    temperature: float = 0.0
    max_tokens: int = 48
    llm_plan: bool = False
    max_actions_shown: int = 40

    def __post_init__(self) -> None:
        for name in ("train", "val"):
            check_range(name, getattr(self, name), lo=1)
        for name in ("test", "workers", "max_ticks", "first_seed"):
            check_range(name, getattr(self, name), lo=0)
        check_range("max_actions_shown", self.max_actions_shown, lo=1)
        LLMWorkerConfig(temperature=self.temperature, max_tokens=self.max_tokens)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SwarmTasksConfig:
        return from_mapping(cls, data, where="swarm")


class _Guard:
    """The target client as the workers see it; remembers every failed call."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.errors: list[BackendError] = []
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        try:
            return self.client.complete(request)
        except BackendError as exc:
            with self._lock:
                self.errors.append(exc)
            raise

    def complete_many(self, requests: Sequence[CompletionRequest], *,
                      concurrency: int = 4) -> list[Completion | BackendError]:
        return run_batch(self.complete, requests, concurrency=concurrency)


class SwarmSkillEnv:
    """:class:`~swarmlearn.skills.SkillEnv` over a swarm scenario (module docstring)."""

    open_tasks = True
    min_cost: float | None = None  # the fewest actions a task can be solved in is not known

    def __init__(self, config: SwarmTasksConfig, scenario: Scenario | None = None) -> None:
        sc = scenario or load_scenario(config.scenario, variant=config.variant)
        over: dict[str, dict[str, Any]] = {}
        if config.workers:
            over["workers"] = {"count": config.workers}
        if config.max_ticks:
            over["limits"] = {"max_ticks": config.max_ticks}
        self.scenario = sc.override(**over) if over else sc
        self.config = config
        self.name = self.scenario.label
        s, c = config.first_seed, config
        self._splits = {Split.TRAIN: tuple(range(s, s + c.train)),
                        Split.VAL: tuple(range(s + c.train, s + c.train + c.val)),
                        Split.TEST: tuple(range(s + c.train + c.val,
                                                s + c.train + c.val + c.test))}

    @classmethod
    def from_config(cls, config: SwarmTasksConfig) -> SwarmSkillEnv:
        return cls(config)

    def tasks(self, split: Split) -> Sequence[int]:
        return self._splits[split]

    def _manager(self, env: BaseEnvironment, client: LLMClient) -> Manager:
        kind = self.scenario.manager.kind
        if kind is ManagerKind.RULE:
            return RuleManager()
        if kind is ManagerKind.NONE:
            return NullManager()
        return LLMManager(client, env)

    def run(self, task: int, skill: str, client: LLMClient) -> Trajectory:
        from swarmlearn.session import build_env

        sc, cfg = self.scenario, self.config
        if task < 0:
            raise ConfigError(f"task seed {task}: expected >= 0", field="task", value=task)
        env = build_env(sc)
        guard = _Guard(client)
        wcfg = LLMWorkerConfig(temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                               skill=skill)
        planner = Planner(guard if cfg.llm_plan else None)
        workers = [LLMWorker(i, guard, env, config=wcfg, planner=planner, seed=task)
                   for i in range(sc.workers.count)]
        bus: EventBus[Event] = EventBus()
        actions: list[ActionEvent] = []
        bus.subscribe(lambda batch: actions.extend(
            e for e in batch if isinstance(e, ActionEvent)), name="skill-env", inline=True)
        swarm = Swarm(env, workers, manager=self._manager(env, guard), bus=bus,
                      config=SwarmConfig(max_ticks=sc.limits.max_ticks,
                                         timeout_s=sc.limits.timeout_s,
                                         schedule=sc.manager.schedule,
                                         interval=sc.manager.interval))
        with swarm:
            ended = swarm.run_episode(seed=task, ids=EventIds(_SESSION))
        if guard.errors:
            first = guard.errors[0]
            raise BackendError(f"task {task}: {len(guard.errors)} target calls failed "
                               f"({type(first).__name__}: {first}); not scored") from first
        solved = ended.outcome.kind is OutcomeKind.SUCCESS
        return Trajectory(task=task, solved=solved, score=float(solved),
                          cost=float(ended.actions), text=self._text(env, ended, actions))

    def _text(self, env: BaseEnvironment, ended: EpisodeEnded,
              actions: Sequence[ActionEvent]) -> str:
        shown = self.config.max_actions_shown
        lines = [f"t{e.tick} w{e.worker}: {e.action}({e.target}) -> "
                 + ("ok" if e.result.success else "no effect")
                 + (f": {e.result.error[:80]}" if e.result.error else "")
                 for e in actions[:shown]]
        more = f"\n... {len(actions) - shown} more actions" if len(actions) > shown else ""
        invalid = int(ended.stats.get("invalid_actions", 0))
        return (f"Task: {env.task_text()}\nOutcome: {ended.outcome.kind.value} after "
                f"{ended.actions} actions in {ended.ticks} ticks "
                f"({invalid} invalid replies)\nActions:\n" + "\n".join(lines) + more)
