"""The tick orchestrator, with an injectable clock so nothing sleeps."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from swarmlearn.core.actions import Action, ActionResult
from swarmlearn.core.bus import EventBus
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EpisodeStarted, Event, EventIds
from swarmlearn.core.manager import Guidance, GuidanceSchedule, NullManager, RuleManager, SwarmView
from swarmlearn.core.swarm import Swarm, SwarmConfig
from swarmlearn.core.workers import FifoPolicy, RandomPolicy, RuleWorker
from swarmlearn.envs import make_env
from swarmlearn.errors import BackendError
from swarmlearn.types import Outcome, OutcomeKind


class FakeClock:
    def __init__(self, step: float = 0.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _swarm(policy: str = "random", workers: int = 3, **cfg: object) -> tuple[Swarm, list[Event]]:
    env = make_env("troubleshooting", {})
    ws = [
        RuleWorker(i, FifoPolicy() if policy == "fifo" else RandomPolicy(i)) for i in range(workers)
    ]
    bus: EventBus[Event] = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.extend, inline=True)
    swarm = Swarm(
        env,
        ws,
        manager=RuleManager(),
        bus=bus,
        config=SwarmConfig(**cfg),  # type: ignore[arg-type]
        clock=FakeClock(),
    )
    return swarm, seen


def test_episode_publishes_start_actions_and_end_with_ordered_ids() -> None:
    swarm, seen = _swarm()
    ended = swarm.run_episode(seed=3, ids=EventIds(7))
    assert isinstance(seen[0], EpisodeStarted) and seen[-1] == ended
    actions = [e for e in seen if isinstance(e, ActionEvent)]
    assert len(actions) == ended.actions > 0
    ids = [e.id for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e.id >> 32 == 7 for e in seen)
    assert ended.first_event == actions[0].id and ended.last_event == actions[-1].id
    assert ended.outcome.kind in (OutcomeKind.SUCCESS, OutcomeKind.FAILURE, OutcomeKind.TIMEOUT)


def test_same_seed_same_episode() -> None:
    def run() -> list[tuple[str, str, bool]]:
        swarm, seen = _swarm()
        swarm.run_episode(seed=11, ids=EventIds(1))
        return [(e.action, e.target, e.success) for e in seen if isinstance(e, ActionEvent)]

    assert run() == run()


def test_max_ticks_ends_with_timeout_and_partial_score() -> None:
    # fifo workers on task seed 5 make progress in two ticks but cannot finish the task
    swarm, _ = _swarm(policy="fifo", max_ticks=2)
    ended = swarm.run_episode(seed=5, ids=EventIds(1))
    assert not swarm.env.done  # the tick limit ended the episode, not the task
    assert ended.ticks == 2
    assert ended.outcome.kind is OutcomeKind.TIMEOUT
    assert ended.outcome.value == pytest.approx(0.25)  # the progress made, kept as the score


def test_clock_timeout_without_sleeping() -> None:
    env = make_env("troubleshooting", {})
    swarm = Swarm(
        env,
        [RuleWorker(0, RandomPolicy(0))],
        config=SwarmConfig(timeout_s=1.0),
        clock=FakeClock(step=0.25),
    )
    start = time.perf_counter()
    ended = swarm.run_episode(seed=1, ids=EventIds(1))
    assert time.perf_counter() - start < 1.0
    assert ended.outcome.kind is OutcomeKind.TIMEOUT and ended.stats["timed_out"] == 1.0
    assert ended.ticks <= 3


class SlowWorker:
    """A blocking (I/O-bound) worker: decide() sleeps, as an LLM call would."""

    blocking = True

    def __init__(self, wid: int, barrier: threading.Barrier | None = None) -> None:
        self.id = wid
        self.barrier = barrier
        self.events: list[ActionEvent] = []

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # only passes if all workers decide at once
        return observation.candidates[self.id % len(observation.candidates)].action

    def observe(self, event: ActionEvent) -> None:
        self.events.append(event)

    def end_episode(self, outcome: Outcome) -> None:
        return None


def test_blocking_workers_decide_in_parallel() -> None:
    barrier = threading.Barrier(4)
    env = make_env("troubleshooting", {})
    workers = [SlowWorker(i, barrier) for i in range(4)]
    with Swarm(env, workers, config=SwarmConfig(max_ticks=3)) as swarm:
        ended = swarm.run_episode(seed=0, ids=EventIds(1))
    assert ended.actions >= 4
    assert all(w.events for w in workers)  # each observed its own action


class FailingWorker(SlowWorker):
    blocking = False

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        raise BackendError("model server down")


def test_worker_errors_are_counted_not_fatal() -> None:
    env = make_env("troubleshooting", {})
    swarm = Swarm(
        env, [FailingWorker(0), RuleWorker(1, RandomPolicy(1))], config=SwarmConfig(max_ticks=5)
    )
    ended = swarm.run_episode(seed=0, ids=EventIds(1))
    assert ended.stats["worker_errors"] >= 1


class InvalidWorker(SlowWorker):
    blocking = False

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        return Action("Teleport", "moon")


def test_invalid_actions_are_counted() -> None:
    env = make_env("troubleshooting", {})
    swarm = Swarm(env, [InvalidWorker(0)], config=SwarmConfig(max_ticks=4))
    ended = swarm.run_episode(seed=0, ids=EventIds(1))
    assert ended.stats["invalid_actions"] == 4


class CountingManager:
    def __init__(self) -> None:
        self.ticks: list[int] = []

    def guide(self, view: SwarmView) -> Guidance:
        self.ticks.append(view.tick)
        return NullManager().guide(view)


@pytest.mark.parametrize(
    ("schedule", "interval", "expected"),
    [(GuidanceSchedule.EVERY_TICK, 1, [0, 1, 2, 3, 4, 5]), (GuidanceSchedule.EVERY_N, 3, [0, 3])],
)
def test_guidance_schedules(schedule: GuidanceSchedule, interval: int, expected: list[int]) -> None:
    env = make_env("troubleshooting", {"max_wrong_restarts": 100})
    mgr = CountingManager()
    swarm = Swarm(
        env,
        [InvalidWorker(0)],
        manager=mgr,
        config=SwarmConfig(max_ticks=6, schedule=schedule, interval=interval),
    )
    swarm.run_episode(seed=0, ids=EventIds(1))
    assert mgr.ticks == expected


def test_guidance_on_completion_follows_progress() -> None:
    env = make_env("troubleshooting", {})
    mgr = CountingManager()
    swarm = Swarm(
        env,
        [RuleWorker(0, FifoPolicy())],
        manager=mgr,
        config=SwarmConfig(max_ticks=30, schedule=GuidanceSchedule.ON_COMPLETION),
    )
    bus_events: list[Event] = []
    swarm.bus.subscribe(bus_events.extend, inline=True)
    swarm.run_episode(seed=0, ids=EventIds(1))
    acts = [e for e in bus_events if isinstance(e, ActionEvent)]
    progress_ticks = {e.tick + 1 for e in acts if e.success}
    assert mgr.ticks[0] == 0 and set(mgr.ticks[1:]) <= progress_ticks


def test_rule_manager_spreads_workers_and_avoids_settled_targets() -> None:
    env = make_env("troubleshooting", {"services": 4})
    obs = env.reset(0)
    svc = list(obs.targets)
    env.step(Action("CheckStatus", svc[0]))
    view = SwarmView(1, env.observe(), [0, 1, 2], [], env.context_priority(), "t")
    g = RuleManager().guide(view)
    assert len(set(g.assignments.values())) == 3
    ctx = env.observe().targets[svc[0]]
    if ctx == "healthy":
        assert svc[0] in g.avoid and svc[0] not in g.focus
    else:
        assert g.focus[0] == svc[0]


def test_rule_manager_reuses_parts_only_for_targets_that_look_the_same() -> None:
    env = make_env("troubleshooting", {"services": 4})
    obs = env.reset(0)
    manager, prio = RuleManager(), env.context_priority()
    first = manager.guide(SwarmView(0, obs, [0, 1], [], prio, "t"))
    again = manager.guide(SwarmView(5, env.observe(), [0, 1], [], prio, "t"))
    assert again.tick == 5 and again == Guidance(5, first.text, first.focus, first.avoid,
                                                  first.assignments)
    svc = list(obs.targets)
    env.step(Action("CheckStatus", svc[0]))  # a context moves: new parts, as a new manager says
    moved = manager.guide(SwarmView(6, env.observe(), [0, 1], [], prio, "t"))
    assert moved == RuleManager().guide(SwarmView(6, env.observe(), [0, 1], [], prio, "t"))
    assert moved.text != first.text
    other = make_env("troubleshooting", {"services": 4})  # other priorities: not from the memo
    other_obs = other.reset(0)
    assert manager.guide(SwarmView(0, other_obs, [0, 1], [], other.context_priority(), "t")) \
        == RuleManager().guide(SwarmView(0, other_obs, [0, 1], [], other.context_priority(), "t"))


def test_episode_end_reaches_every_worker() -> None:
    seen: list[Outcome] = []

    class Recording(RuleWorker):
        def end_episode(self, outcome: Outcome) -> None:
            seen.append(outcome)
            super().end_episode(outcome)

    env = make_env("troubleshooting", {})
    ws = [Recording(i, RandomPolicy(i)) for i in range(2)]
    ended: EpisodeEnded = Swarm(env, ws).run_episode(seed=0, ids=EventIds(1))
    assert seen == [ended.outcome, ended.outcome]


def test_sequential_environments_take_turns_on_a_fresh_observation() -> None:
    seen_steps: list[int] = []

    class Watching(SlowWorker):
        blocking = False

        def decide(self, observation: Observation, guidance: Guidance) -> Action:
            seen_steps.append(observation.step)
            return observation.candidates[0].action

    env = make_env("maze", {})
    assert env.sequential
    swarm = Swarm(env, [Watching(i) for i in range(3)], config=SwarmConfig(max_ticks=2))
    swarm.run_episode(seed=0, ids=EventIds(1))
    assert seen_steps[:3] == [0, 1, 2]  # each worker saw the previous worker's step


def test_action_events_leave_the_cyclic_collector() -> None:
    untrack = pytest.importorskip("swarmlearn.core._untrack", reason="not built").untrack
    swarm, seen = _swarm()
    swarm.run_episode(seed=3, ids=EventIds(1))
    events = [e for e in seen if isinstance(e, ActionEvent)]
    # NamedTuples stay tracked for life in CPython; these hold nothing that could form a cycle
    assert events and not any(gc.is_tracked(e) or gc.is_tracked(e.result) for e in events)
    holds_a_list = ActionEvent(1, 1, "t", "", 0, 0, 0, "A", "", (("k", []),),  # type: ignore[arg-type]
                               ActionResult(True), 0.0, "", 0.0)
    assert untrack(holds_a_list) is holds_a_list and gc.is_tracked(holds_a_list)
    plain = ActionEvent(1, 1, "t", "", 0, 0, 0, "A", "", (("k", "v"),), ActionResult(True),
                        0.0, "", 0.0)
    assert gc.is_tracked(plain) and not gc.is_tracked(untrack(plain))
