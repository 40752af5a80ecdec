"""Workers, the selection-policy plug-in point, and the baseline policies.

A :class:`Worker` turns an observation and the manager's guidance into an
action. The :class:`RuleWorker` narrows the candidates by the guidance and
asks a :class:`SelectionPolicy` to choose; learning policies (UCB1,
Thompson, …) live in :mod:`swarmlearn.learn` and plug in here.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from swarmlearn.core.actions import Action, Candidate
from swarmlearn.core.environment import Observation
from swarmlearn.core.events import ActionEvent
from swarmlearn.core.manager import Guidance
from swarmlearn.types import Outcome, WorkerId

__all__ = [
    "FifoPolicy",
    "RandomPolicy",
    "RuleWorker",
    "SelectionContext",
    "SelectionPolicy",
    "Worker",
    "narrow",
]

HISTORY = 8
_NO_OBSERVATION = Observation(step=0, candidates=(), targets={}, facts={}, done=False)


@dataclass(slots=True)
class SelectionContext:
    """What a policy may condition on besides the candidates themselves.

    A worker passes the same object at every decision with fresh fields: a
    policy reads it during ``select`` and must not keep it."""

    worker: WorkerId
    observation: Observation
    guidance: Guidance
    history: Sequence[ActionEvent] = field(default_factory=tuple)  # this worker's, oldest first


@runtime_checkable
class SelectionPolicy(Protocol):
    """Chooses one of the candidates; learns from events and episode ends."""

    name: str

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int: ...

    def update(self, event: ActionEvent) -> None: ...

    def end_episode(self, outcome: Outcome) -> None: ...


@runtime_checkable
class Worker(Protocol):
    """Decides one action per tick. ``blocking`` workers (LLM) are run in parallel."""

    id: WorkerId
    blocking: bool

    def decide(self, observation: Observation, guidance: Guidance) -> Action: ...

    def observe(self, event: ActionEvent) -> None: ...

    def end_episode(self, outcome: Outcome) -> None: ...


class FifoPolicy:
    """Baseline: sweeps the candidates in their listed order, least-tried first."""

    name = "fifo"

    def __init__(self) -> None:
        self._tried: dict[Action, int] = {}

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        tried = self._tried
        best, best_n = 0, -1
        for i, cand in enumerate(candidates):
            n = tried.get(cand.action, 0)
            if n == 0:
                return i
            if best_n < 0 or n < best_n:
                best, best_n = i, n
        return best

    def update(self, event: ActionEvent) -> None:
        key = Action(event.action, event.target, event.args)
        self._tried[key] = self._tried.get(key, 0) + 1

    def end_episode(self, outcome: Outcome) -> None:
        self._tried.clear()


class RandomPolicy:
    """Baseline: uniform choice with a seeded generator."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def select(self, candidates: Sequence[Candidate], ctx: SelectionContext) -> int:
        return self._rng.randrange(len(candidates))

    def update(self, event: ActionEvent) -> None:
        return None

    def end_episode(self, outcome: Outcome) -> None:
        return None


def narrow(
    candidates: Sequence[Candidate],
    guidance: Guidance,
    worker: WorkerId,
    pickers: Mapping[str, Callable[[Sequence[Candidate]], tuple[Candidate, ...]]] | None = None,
) -> Sequence[Candidate]:
    """The candidates a worker should consider under ``guidance``.

    With an assigned target: that target's actions plus untargeted ones.
    Otherwise: everything not on an avoided target. Never empty if
    ``candidates`` is not. ``pickers`` (``Observation.pickers``, for the
    observation's own candidates) make the assigned case one C call.
    """
    assigned = guidance.assignments.get(worker)
    if assigned:
        if pickers:
            picker = pickers.get(assigned)
            if picker is not None:
                return picker(candidates)
        keep = [c for c in candidates if not c.action.target or c.action.target == assigned]
    elif guidance.avoid:
        avoid = guidance.avoid_set
        keep = [c for c in candidates if c.action.target not in avoid]
    else:
        return candidates
    return keep or candidates


class RuleWorker:
    """A worker that narrows by guidance and lets a SelectionPolicy choose."""

    blocking = False

    def __init__(self, worker_id: WorkerId, policy: SelectionPolicy) -> None:
        self.id = worker_id
        self.policy = policy
        self._history: deque[ActionEvent] = deque(maxlen=HISTORY)
        self._ctx = SelectionContext(worker_id, _NO_OBSERVATION, Guidance(), self._history)

    def decide(self, observation: Observation, guidance: Guidance) -> Action:
        candidates = narrow(observation.candidates, guidance, self.id, observation.pickers)
        ctx = self._ctx  # one context per worker, refreshed (policies must not keep it)
        ctx.observation, ctx.guidance = observation, guidance
        return candidates[self.policy.select(candidates, ctx)].action

    def observe(self, event: ActionEvent) -> None:
        self._history.append(event)
        self.policy.update(event)

    def end_episode(self, outcome: Outcome) -> None:
        self._history.clear()
        self.policy.end_episode(outcome)
