"""The tick orchestrator: workers decide, the environment applies, events flow.

Each tick: the manager guides (on its schedule), every worker decides from
the same observation — in parallel threads when workers block on I/O (LLM
workers) — then the actions are applied in worker order (the environment is
shared and deterministic), each result becomes an :class:`ActionEvent`, the
worker that acted observes it, and the tick's events are published on the
bus. An episode ends on success or failure, at ``max_ticks``, or when the
clock passes ``timeout_s``. The clock is injectable, so tests never sleep.

What the swarm is told of an episode's outcome is the environment's, unless
an :class:`OutcomeJudge` stands in between (a hidden-signal run: the outcome
comes from what a person says about the task, see docs/feedback.md); the
workers, the bus and the store then see the judge's outcome only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult
from swarmlearn.core.bus import EventBus
from swarmlearn.core.environment import Environment, Observation
from swarmlearn.core.events import (
    ActionEvent,
    EpisodeEnded,
    EpisodeStarted,
    Event,
    EventIds,
    LLMCallEvent,
)
from swarmlearn.core.manager import NO_GUIDANCE, Guidance, GuidanceSchedule, Manager, SwarmView
from swarmlearn.core.workers import Worker
from swarmlearn.errors import SwarmlearnError
from swarmlearn.types import Outcome, Timeout

__all__ = ["Clock", "OutcomeJudge", "Swarm", "SwarmConfig"]

logger = logging.getLogger(__name__)

_new_event = tuple.__new__  # an ActionEvent without the NamedTuple's Python-level __new__

_T = TypeVar("_T")


def _keep(obj: _T) -> _T:
    return obj


try:  # events out of the cyclic GC's way (core/_untrack.c; optional)
    from swarmlearn.core._untrack import untrack as _untrack
except ImportError:  # not built: the collector keeps walking them, nothing else changes
    _untrack = _keep

Clock = Callable[[], float]


class OutcomeJudge(Protocol):
    """Stands between the environment's outcome and everything that learns from it.

    ``judge`` gets the episode's end with the environment's outcome and returns
    the end the swarm is told (its workers, the bus, the store), and events to
    publish right after it (e.g. the feedback it was decided from).
    """

    def judge(self, ended: EpisodeEnded) -> tuple[EpisodeEnded, Sequence[Event]]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class SwarmConfig:
    max_ticks: int = 100
    timeout_s: float = 60.0
    schedule: GuidanceSchedule = GuidanceSchedule.EVERY_TICK
    interval: int = 1

    def __post_init__(self) -> None:
        check_range("max_ticks", self.max_ticks, lo=1)
        check_range("timeout_s", self.timeout_s, lo=0.0, lo_open=True)
        check_range("interval", self.interval, lo=1)


@dataclass(slots=True)
class _Counters:
    actions: int = 0
    invalid: int = 0
    worker_errors: int = 0
    guidance: int = 0
    first: int = -1
    last: int = -1
    extra: dict[str, float] = field(default_factory=dict)


class Swarm:
    """Runs episodes of one environment with a fixed set of workers."""

    def __init__(
        self,
        env: Environment,
        workers: Sequence[Worker],
        *,
        manager: Manager | None = None,
        bus: EventBus[Event] | None = None,
        config: SwarmConfig | None = None,
        clock: Clock = time.perf_counter,
        wall: Clock = time.time,
        judge: OutcomeJudge | None = None,
    ) -> None:
        if not workers:
            raise ValueError("a swarm needs at least one worker")
        self.env = env
        self.workers = list(workers)
        self.manager = manager
        self.bus = bus if bus is not None else EventBus()
        self.config = config or SwarmConfig()
        self.clock = clock
        self.wall = wall
        self.judge = judge
        # environments with a single agent in them (a maze walker) take turns: each
        # worker decides on the state the previous worker's action left behind
        self._turns = bool(getattr(env, "sequential", False))
        # parts that make events on the side (LLM calls): looked up once, drained every tick
        self._drainers = [d for d in (getattr(p, "drain_events", None)
                                      for p in (*self.workers, manager)) if d is not None]
        self._pool: ThreadPoolExecutor | None = None
        if len(self.workers) > 1 and any(w.blocking for w in self.workers):
            self._pool = ThreadPoolExecutor(len(self.workers), thread_name_prefix="worker")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one episode ------------------------------------------------------------
    def run_episode(
        self, *, seed: int, ids: EventIds, task: str = "", group: str = "", episode: int = 0
    ) -> EpisodeEnded:
        env, cfg, clock = self.env, self.config, self.clock
        obs = env.reset(seed)
        task = task or f"{env.kind}:{seed}"
        session = ids.session
        self.bus.publish(
            [EpisodeStarted(ids.next(), session, task, group, episode, seed, self.wall())]
        )
        dropped_before = self.bus.dropped()
        counters = _Counters()
        guidance = NO_GUIDANCE
        recent: list[ActionEvent] = []
        worker_ids = tuple(w.id for w in self.workers)
        start = clock()
        tick = 0
        timed_out = False
        while tick < cfg.max_ticks and not env.done:
            if clock() - start > cfg.timeout_s:
                timed_out = True
                break
            obs = env.observe()
            if self.manager is not None and self._due(tick, recent):
                guidance = self.manager.guide(
                    SwarmView(tick, obs, worker_ids, recent, env.context_priority(), task))
                counters.guidance += 1
            if self._turns:  # one agent in the world: each worker sees the last one's move
                recent = []
                for worker in self.workers:
                    if env.done:
                        break
                    now = env.observe()
                    one = [self._decide_one(worker, now, guidance, counters)]
                    counters.worker_errors += one[0][1] is None
                    recent += self._apply(one, now, ids, task, group, episode, tick, counters)
            else:
                actions = self._decide(obs, guidance, counters)
                recent = self._apply(actions, obs, ids, task, group, episode, tick, counters)
            self.bus.publish([*recent, *self._drain(ids, task, tick, counters)])
            tick += 1
        outcome: Outcome = env.outcome()
        if timed_out and not env.done:
            outcome = Timeout(outcome.value)
        ended = EpisodeEnded(
            ids.next(),
            session,
            task,
            group,
            episode,
            seed,
            outcome,
            tick,
            counters.actions,
            clock() - start,
            counters.first,
            counters.last,
            {
                "invalid_actions": counters.invalid,
                "worker_errors": counters.worker_errors,
                "guidance": counters.guidance,
                "dropped_events": self.bus.dropped() - dropped_before,
                "timed_out": float(timed_out),
                **counters.extra,
                **self._episode_stats(),
            },
            self.wall(),
        )
        extra: Sequence[Event] = ()
        if self.judge is not None:
            ended, extra = self.judge.judge(ended)
        for w in self.workers:
            w.end_episode(ended.outcome)
        self.bus.publish([ended, *extra])
        return ended

    def _due(self, tick: int, recent: Sequence[ActionEvent]) -> bool:
        schedule = self.config.schedule
        if tick == 0 or schedule is GuidanceSchedule.EVERY_TICK:
            return True
        if schedule is GuidanceSchedule.EVERY_N:
            return tick % self.config.interval == 0
        return any(e.result.success for e in recent)  # ON_COMPLETION: after progress

    def _drain(self, ids: EventIds, task: str, tick: int, counters: _Counters) -> list[Event]:
        """Events that workers and the manager made on the side (LLM calls), with ids now."""
        if not self._drainers:
            return []
        out: list[Event] = []
        for drain in self._drainers:
            out.extend(drain(ids, task, tick))
        extra = counters.extra
        for e in out:
            if isinstance(e, LLMCallEvent):
                extra["llm_calls"] = extra.get("llm_calls", 0.0) + 1
                extra["llm_failed"] = extra.get("llm_failed", 0.0) + (not e.ok)
                extra["prompt_tokens"] = extra.get("prompt_tokens", 0.0) + e.prompt_tokens
                extra["completion_tokens"] = (extra.get("completion_tokens", 0.0)
                                              + e.completion_tokens)
                extra["llm_latency"] = extra.get("llm_latency", 0.0) + e.latency
        return out

    def _episode_stats(self) -> dict[str, float]:
        """Per-episode counters that workers keep (e.g. valid/repaired/rejected replies)."""
        total: dict[str, float] = {}
        for w in self.workers:
            stats = getattr(w, "episode_stats", None)
            if stats is not None:
                for k, v in stats().items():
                    total[k] = total.get(k, 0.0) + v
        return total

    def _decide_one(
        self, worker: Worker, obs: Observation, guidance: Guidance, counters: _Counters
    ) -> tuple[Worker, Action | None]:
        try:
            return worker, worker.decide(obs, guidance)
        except SwarmlearnError as exc:
            logger.warning("worker %s could not decide: %s", worker.id, exc)
            return worker, None

    def _decide(
        self, obs: Observation, guidance: Guidance, counters: _Counters
    ) -> list[tuple[Worker, Action | None]]:
        if self._pool is None:
            decided = [self._decide_one(w, obs, guidance, counters) for w in self.workers]
        else:
            decided = list(self._pool.map(lambda w: self._decide_one(w, obs, guidance, counters),
                                          self.workers))
        counters.worker_errors += sum(1 for _, a in decided if a is None)
        return decided

    def _apply(
        self,
        decided: list[tuple[Worker, Action | None]],
        obs: Observation,
        ids: EventIds,
        task: str,
        group: str,
        episode: int,
        tick: int,
        counters: _Counters,
    ) -> list[ActionEvent]:
        env, clock, wall = self.env, self.clock, self.wall
        session, next_id, targets = ids.session, ids.next, obs.targets
        events: list[ActionEvent] = []
        for worker, action in decided:
            if action is None or env.done:
                continue
            t0 = clock()
            result: ActionResult = env.step(action)
            target = action.target
            event = _new_event(ActionEvent, (
                next_id(),
                session,
                task,
                group,
                episode,
                tick,
                worker.id,
                action.name,
                target,
                action.args,
                result,
                clock() - t0,
                targets.get(target, "") if target else "",  # obs.context_of(action)
                wall(),
            ))
            _untrack(event)
            if result.invalid:
                counters.invalid += 1
            worker.observe(event)
            events.append(event)
        if events:
            if counters.first < 0:
                counters.first = events[0].id
            counters.last = events[-1].id
            counters.actions += len(events)
        return events
