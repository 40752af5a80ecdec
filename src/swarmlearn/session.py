"""Run a scenario: build its swarm, run episodes, record everything in the store.

``run_session(scenario, episodes=10, store=store)`` is the one entry point
the CLI, evaluation and the learning loops share. Selection policies and
worker kinds are looked up by name; the learning policies (``ucb1`` …) and
the LLM / RL worker kinds come from optional packages and are imported only
when a scenario asks for them.
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from swarmlearn.core.bus import EventBus, SubscriberStats
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.core.events import EpisodeEnded, Event, EventIds
from swarmlearn.core.manager import Manager, NullManager, RuleManager
from swarmlearn.core.scenario import ManagerKind, Scenario, WorkerKind
from swarmlearn.core.swarm import Clock, OutcomeJudge, Swarm, SwarmConfig
from swarmlearn.core.workers import FifoPolicy, RandomPolicy, RuleWorker, SelectionPolicy, Worker
from swarmlearn.envs import make_env
from swarmlearn.errors import ConfigError, StoreError
from swarmlearn.store import Recorder, Store
from swarmlearn.types import OutcomeKind, SessionId

__all__ = [
    "PolicyFactory",
    "SessionResult",
    "SwarmParts",
    "build_env",
    "build_swarm_parts",
    "policy_factory",
    "run_session",
]

logger = logging.getLogger(__name__)

Scalar = str | int | float | bool


class PolicyFactory(Protocol):
    """Makes the selection policy of worker ``worker`` (0-based)."""

    def __call__(
        self, worker: int, *, seed: int, params: Mapping[str, Scalar]
    ) -> SelectionPolicy: ...


def _fifo(worker: int, *, seed: int, params: Mapping[str, Scalar]) -> SelectionPolicy:
    return FifoPolicy()


def _random(worker: int, *, seed: int, params: Mapping[str, Scalar]) -> SelectionPolicy:
    return RandomPolicy(seed * 1_000_003 + worker)


_BUILTIN_POLICIES: dict[str, PolicyFactory] = {"fifo": _fifo, "random": _random}
#: policies from optional packages: name → "module:attribute" of a PolicyFactory maker
_LAZY_POLICIES: dict[str, str] = {
    name: "swarmlearn.learn.policies:policies_for"
    for name in ("ucb1", "thompson", "thompson-mean", "greedy", "adaptive")
}
#: worker kinds from optional packages: kind → "module:attribute" of a WorkerBuilder
_LAZY_WORKERS: dict[WorkerKind, str] = {
    WorkerKind.LLM: "swarmlearn.llm.backend:build_llm_workers",
    WorkerKind.RL: "swarmlearn.rl:build_rl_workers",
}
_LAZY_MANAGERS: dict[ManagerKind, str] = {
    ManagerKind.LLM: "swarmlearn.llm.backend:build_llm_manager",
}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def policy_factory(name: str) -> PolicyFactory:
    """The factory of a named selection policy; ConfigError lists the known names."""
    if name in _BUILTIN_POLICIES:
        return _BUILTIN_POLICIES[name]
    if name in _LAZY_POLICIES:
        factory: PolicyFactory = _load(_LAZY_POLICIES[name])(name)
        return factory
    known = ", ".join(sorted([*_BUILTIN_POLICIES, *_LAZY_POLICIES]))
    raise ConfigError(
        f"workers.policy: unknown policy {name!r} (known: {known})",
        field="workers.policy",
        value=name,
    )


def build_env(scenario: Scenario) -> BaseEnvironment:
    env = make_env(scenario.env_kind, scenario.env_params)
    if scenario.actions.include or scenario.actions.exclude:
        env.restrict(scenario.actions.include, scenario.actions.exclude)
    return env


@dataclass(slots=True)
class SwarmParts:
    env: BaseEnvironment
    workers: list[Worker]
    manager: Manager | None
    closers: list[Callable[[], None]] = field(default_factory=list)


def build_swarm_parts(
    scenario: Scenario,
    *,
    policies: PolicyFactory | None = None,
    seed: int | None = None,
    store: Store | None = None,
) -> SwarmParts:
    """The environment, workers and manager a scenario describes.

    Worker and manager kinds from optional packages are built by hooks called
    as ``hook(scenario, env, seed=, policies=, store=, backend=)``; an LLM
    backend (a local llama.cpp server, or a client on ``workers.url``) is
    opened once and shared by LLM workers and the LLM manager.
    """
    env = build_env(scenario)
    wcfg = scenario.workers
    worker_seed = scenario.seeds.workers if seed is None else seed
    parts = SwarmParts(env, [], None)
    backend: Any = None
    if WorkerKind.LLM in (wcfg.kind,) or scenario.manager.kind is ManagerKind.LLM:
        backend = _load("swarmlearn.llm.backend:open_backend")(scenario)
        parts.closers.append(backend.close)
    hooks = {"seed": worker_seed, "policies": policies, "store": store, "backend": backend}
    try:
        if wcfg.kind is WorkerKind.RULE:
            make = policies or policy_factory(wcfg.policy)
            parts.workers = [
                RuleWorker(i, make(i, seed=worker_seed, params=wcfg.policy_params))
                for i in range(wcfg.count)
            ]
        else:
            parts.workers = list(_load(_LAZY_WORKERS[wcfg.kind])(scenario, env, **hooks))
        mkind = scenario.manager.kind
        if mkind is ManagerKind.RULE:
            parts.manager = RuleManager()
        elif mkind is ManagerKind.NONE:
            parts.manager = NullManager()
        else:
            parts.manager = _load(_LAZY_MANAGERS[mkind])(scenario, env, **hooks)
    except BaseException:
        for close in parts.closers:
            close()
        raise
    return parts


@dataclass(slots=True)
class SessionResult:
    session: SessionId
    scenario: str
    episodes: list[EpisodeEnded]
    wall_seconds: float
    bus: list[SubscriberStats]
    status: str = "completed"

    @property
    def actions(self) -> int:
        return sum(e.actions for e in self.episodes)

    @property
    def success_rate(self) -> float:
        if not self.episodes:
            return 0.0
        ok = sum(1 for e in self.episodes if e.outcome.kind is OutcomeKind.SUCCESS)
        return ok / len(self.episodes)

    def summary(self) -> dict[str, Any]:
        return {
            "episodes": len(self.episodes),
            "success_rate": round(self.success_rate, 4),
            "actions": self.actions,
            "wall_seconds": round(self.wall_seconds, 3),
            "dropped_events": sum(s.dropped for s in self.bus),
            "failed_deliveries": sum(s.failed for s in self.bus),
        }


_frozen = False


def _freeze_startup_heap() -> None:
    """Once per process, before its first session: collect, then move every object alive
    (modules, classes, the libraries' caches) to the collector's permanent generation
    (``gc.freeze``), so that the full collections a long session triggers walk only what
    sessions made. Those took 30-45 µs of every task of a 3,000-task run (two or three
    full passes over the whole heap); frozen, about 10. The collect comes first, so
    no garbage is frozen; what is frozen is what a process keeps alive (an object of it
    that later ends in a reference cycle is not collected: a one-off, bounded by the
    start-up heap). ``SWARMLEARN_GC_FREEZE=0`` turns it off."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    if os.environ.get("SWARMLEARN_GC_FREEZE", "1").strip() in ("0", "false", "no"):
        return
    gc.collect()
    gc.freeze()


def _swarm(scenario: Scenario, parts: SwarmParts, bus: EventBus[Event], clock: Clock,
           judge: OutcomeJudge | None = None) -> Swarm:
    lim, mgr = scenario.limits, scenario.manager
    config = SwarmConfig(max_ticks=lim.max_ticks, timeout_s=lim.timeout_s,
                         schedule=mgr.schedule, interval=mgr.interval)
    return Swarm(parts.env, parts.workers, manager=parts.manager, bus=bus, clock=clock,
                 config=config, judge=judge)


def _finish(
    store: Store | None, recorder: Recorder | None, bus: EventBus[Event], result: SessionResult
) -> None:
    """Flush the recorder, close the bus and the session; raise a write error last."""
    write_error: StoreError | None = None
    if recorder is not None:
        try:
            recorder.flush()
        except StoreError as exc:
            write_error, result.status = exc, "failed"
    result.bus = bus.stats()
    bus.close()
    if store is not None:
        store.close_session(result.session, status=result.status, summary=result.summary())
    if write_error is not None:
        raise write_error


def _open(
    store: Store | None, scenario: Scenario, *, group: str, kind: str, resume: SessionId | None
) -> tuple[SessionId, int]:
    """The session id and first sequence number (continuing ``resume`` if given)."""
    if store is None:
        return 0, 0
    if resume is not None:
        store.reopen_session(resume)  # raises StoreError if there is no such session
        return resume, store.next_seq(resume)
    sid = store.open_session(
        scenario=scenario.name,
        variant=scenario.variant,
        group=group,
        kind=kind,
        config=scenario.to_dict(),
    )
    return sid, 0


def run_session(
    scenario: Scenario,
    *,
    episodes: int = 1,
    store: Store | None = None,
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    worker_seed: int | None = None,
    group: str = "",
    kind: str = "run",
    policies: PolicyFactory | None = None,
    subscribers: Sequence[Callable[[EventBus[Event]], object]] = (),
    on_episode: Callable[[EpisodeEnded], None] | None = None,
    clock: Clock = time.perf_counter,
    resume: SessionId | None = None,
    judge: OutcomeJudge | None = None,
) -> SessionResult:
    """Run ``episodes`` tasks of ``scenario``; episode i uses task seed ``seed + i``.

    ``seeds`` (a list of task seeds) replaces ``episodes`` and ``seed``.
    Workers are seeded with ``worker_seed`` (default: the scenario's
    ``seeds.workers``), so attempts at the same tasks can differ.

    With a store, a session is opened (or ``resume``\\ d, continuing its ids)
    and every event is recorded; the session is closed as completed, failed
    or interrupted. ``subscribers`` are called with the bus before the first
    episode (learners attach there). With a store, ``on_episode`` is called
    once the episode's events are committed (a crash never loses an episode
    that was reported as ended), in order, in this thread. A ``judge`` decides
    the outcome the swarm is told of each episode (default: the environment's).
    """
    base = scenario.seeds.base if seed is None else seed
    task_seeds = list(seeds) if seeds is not None else [base + i for i in range(episodes)]
    if not task_seeds:
        raise ConfigError(f"episodes: expected >= 1, got {len(task_seeds)}", field="episodes")
    wseed = scenario.seeds.workers if worker_seed is None else worker_seed
    if policies is None and scenario.workers.kind is WorkerKind.RULE:
        policies = policy_factory(scenario.workers.policy)
    _freeze_startup_heap()
    parts = build_swarm_parts(scenario, policies=policies, seed=wseed, store=store)
    bus: EventBus[Event] = EventBus()
    attach = getattr(policies, "attach", None)
    if attach is not None:
        attach(bus)  # learning policies feed their shared statistics from the bus
    sid, start = _open(store, scenario, group=group, kind=kind, resume=resume)
    recorder = Recorder(store, bus) if store is not None else None
    for attach in subscribers:
        attach(bus)
    ids = EventIds(sid, start)
    swarm = _swarm(scenario, parts, bus, clock, judge)
    done: list[EpisodeEnded] = []
    status = "failed"
    t0 = time.perf_counter()
    try:
        for i, task_seed in enumerate(task_seeds):
            ended = swarm.run_episode(
                seed=task_seed, ids=ids, group=group, episode=i,
                task=f"{scenario.label}:{task_seed}",
            )
            done.append(ended)
            if on_episode is None:
                continue
            if recorder is None:
                on_episode(ended)
            else:  # an episode is reported as ended once its events are committed
                recorder.when_durable(ended.id, functools.partial(on_episode, ended))
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        swarm.close()
        for close in parts.closers:
            close()
        result = SessionResult(sid, scenario.label, done, time.perf_counter() - t0, [], status)
        _finish(store, recorder, bus, result)
        if recorder is not None:
            recorder.deliver()  # everything is committed now
    return result
