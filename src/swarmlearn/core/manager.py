"""The manager: guidance for the workers, on a schedule.

Guidance names the targets worth working on (``focus``), those to leave
alone (``avoid``), a target per worker (``assignments``, so workers do not
all do the same thing) and a text for LLM workers. The rule manager ranks
targets by the environment's visible context priority; an LLM manager lives
in :mod:`swarmlearn.llm`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent
from swarmlearn.types import WorkerId

__all__ = [
    "Guidance",
    "GuidanceSchedule",
    "Manager",
    "NullManager",
    "RuleManager",
    "SwarmView",
]


class GuidanceSchedule(enum.StrEnum):
    EVERY_TICK = "every_tick"
    EVERY_N = "every_n"
    ON_COMPLETION = "on_completion"


@dataclass(frozen=True, slots=True)
class Guidance:
    tick: int = 0
    text: str = ""
    focus: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    assignments: Mapping[WorkerId, str] = field(default_factory=dict)
    avoid_set: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        if self.avoid and not self.avoid_set:
            object.__setattr__(self, "avoid_set", frozenset(self.avoid))


NO_GUIDANCE = Guidance()


@dataclass(frozen=True, slots=True)
class SwarmView:
    """What a manager sees: the tick, the observation, the workers, the last events."""

    tick: int
    observation: Observation
    workers: Sequence[WorkerId]
    recent: Sequence[ActionEvent]
    priority: Mapping[str, int]
    task: str


@runtime_checkable
class Manager(Protocol):
    def guide(self, view: SwarmView) -> Guidance: ...


class NullManager:
    """Gives no guidance: every worker sees every candidate."""

    def guide(self, view: SwarmView) -> Guidance:
        return Guidance(tick=view.tick)


#: a guidance's parts but its tick: text, focus, avoid, assignments (shared: read only), avoid set
_Parts = tuple[str, tuple[str, ...], tuple[str, ...], Mapping[WorkerId, str], frozenset[str]]


class RuleManager:
    """Focus on the most promising targets; spread the workers over them.

    The guidance follows from the targets' contexts, their priorities and the
    workers alone; a tick whose targets look as they did before reuses the
    parts it made then (a bounded memo of pure values)."""

    def __init__(self) -> None:
        self._memo: dict[tuple[object, ...], _Parts] = {}
        self._priority: Mapping[str, int] | None = None  # the memo's priorities

    def guide(self, view: SwarmView) -> Guidance:
        targets = view.observation.targets
        if view.priority is not self._priority:
            self._memo.clear()
            self._priority = view.priority
        key = (*targets.items(), *view.workers)
        parts = self._memo.get(key)
        if parts is None:
            if len(self._memo) >= 4096:
                self._memo.clear()
            parts = self._memo[key] = self._parts(targets, view.priority, view.workers)
        text, focus, avoid, assignments, avoid_set = parts
        return Guidance(view.tick, text, focus, avoid, assignments, avoid_set)

    @staticmethod
    def _parts(targets: Mapping[str, str], prio: Mapping[str, int],
               workers: Sequence[WorkerId]) -> _Parts:
        # a learning swarm changes some target's context almost every tick, so this runs
        # on most of its ticks: one pass, and a sort of (-priority, position) pairs (the
        # same order as a stable sort by priority, without a key function)
        keyed: list[tuple[int, int, str]] = []
        avoid_l: list[str] = []
        get = prio.get
        for i, (t, ctx) in enumerate(targets.items()):
            p = get(ctx, 1)
            if p > 0:
                keyed.append((-p, i, t))
            else:
                avoid_l.append(t)
        avoid = tuple(avoid_l)
        if not keyed:
            return "No open targets.", (), avoid, {}, frozenset(avoid)
        keyed.sort()
        ranked = tuple([k[2] for k in keyed])
        n = len(ranked)
        assignments = {w: ranked[i % n] for i, w in enumerate(workers)}
        shown = ", ".join([f"{t} ({targets[t]})" for t in ranked[:4]])
        text = f"Focus on: {shown}."
        if avoid:
            text += f" Leave alone: {', '.join(avoid)}."
        return text, ranked, avoid, assignments, frozenset(avoid)
