"""What the optimizer needs from a task environment: :class:`SkillEnv`.

An environment has three splits of tasks (``train``, ``val``, ``test``; each
task has an integer id unique in the environment) and runs one task with a
skill document and a target LLM client, returning a :class:`Trajectory`.
A backend failure is raised (:class:`~swarmlearn.errors.BackendError`), never
turned into a failed task: the rollout retries it or stops the step.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from swarmlearn.lifecycle import TaskResult
from swarmlearn.llm import LLMClient

__all__ = ["SkillEnv", "Split", "Trajectory"]


class Split(enum.StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


@dataclass(frozen=True, kw_only=True, slots=True)
class Trajectory:
    """One task run with one skill: the outcome and what the reflection reads."""

    task: int
    solved: bool
    score: float  # in [0, 1], higher better (token F1 for QA, success for a swarm)
    cost: float  # lower better, paired by the gate (1 - F1; actions spent)
    text: str  # the task, the answer and the reference, for the optimizer to read

    def result(self) -> TaskResult:
        return TaskResult(self.task, self.solved, self.cost)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "solved": self.solved, "score": self.score,
                "cost": self.cost, "text": self.text}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trajectory:
        return cls(task=int(d["task"]), solved=bool(d["solved"]), score=float(d["score"]),
                   cost=float(d["cost"]), text=str(d["text"]))


@runtime_checkable
class SkillEnv(Protocol):
    """A set of tasks a skill document is optimized on. ``min_cost`` is the lowest cost
    a solved task can have, if the environment knows it (QA: 0.0, an exact match has
    token F1 1), else ``None``: a task solved at that cost cannot be won by a
    challenger, which lets the gate stop sooner and a run stop once its champion
    solves every validation task so."""

    name: str
    min_cost: float | None

    def tasks(self, split: Split) -> Sequence[int]:
        """The task ids of ``split``, in a stable order."""
        ...

    def run(self, task: int, skill: str, client: LLMClient) -> Trajectory:
        """Run ``task`` with ``skill``; BackendError if the target cannot be reached."""
        ...
