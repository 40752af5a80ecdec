"""Small shared records used across packages: ids and episode outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

from swarmlearn.errors import ConfigError

__all__ = [
    "EventId",
    "Failure",
    "Outcome",
    "OutcomeKind",
    "SessionId",
    "Success",
    "Timeout",
    "Unknown",
    "WorkerId",
    "outcome_from_dict",
]

EventId: TypeAlias = int
SessionId: TypeAlias = int
WorkerId: TypeAlias = int


class OutcomeKind(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Success:
    """The task was solved; ``score`` in [0, 1] grades how well."""

    score: float = 1.0
    kind: OutcomeKind = OutcomeKind.SUCCESS

    @property
    def value(self) -> float:
        return self.score

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "score": self.score}


@dataclass(frozen=True, slots=True)
class Failure:
    """The task ended unsolved; ``reason`` says why."""

    reason: str
    kind: OutcomeKind = OutcomeKind.FAILURE

    @property
    def value(self) -> float:
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Timeout:
    """The tick or time limit ended the task; ``partial_score`` in [0, 1]."""

    partial_score: float = 0.0
    kind: OutcomeKind = OutcomeKind.TIMEOUT

    @property
    def value(self) -> float:
        return self.partial_score

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "partial_score": self.partial_score}


@dataclass(frozen=True, slots=True)
class Unknown:
    """The outcome is not known (e.g. the run was interrupted)."""

    kind: OutcomeKind = OutcomeKind.UNKNOWN

    @property
    def value(self) -> float:
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value}


Outcome: TypeAlias = Success | Failure | Timeout | Unknown


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    """Inverse of ``Outcome.to_dict``; raises ConfigError on malformed input."""
    kind = data.get("kind")
    try:
        if kind == OutcomeKind.SUCCESS:
            return Success(float(data.get("score", 1.0)))
        if kind == OutcomeKind.FAILURE:
            return Failure(str(data["reason"]))
        if kind == OutcomeKind.TIMEOUT:
            return Timeout(float(data.get("partial_score", 0.0)))
        if kind == OutcomeKind.UNKNOWN:
            return Unknown()
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed outcome {data!r}: {exc}", field="outcome") from exc
    raise ConfigError(f"unknown outcome kind {kind!r}", field="outcome.kind", value=kind)
